"""After the cepstra: HTK regression deltas and cepstral mean and variance normalisation.

Features (..., frames, coefficients) in, the same shape out; the array module comes from the
input.
"""

from __future__ import annotations

import numpy as np

from audio.backend import Array, array_module

def deltas(features: Array, width: int = 2, order: int = 1) -> Array:
    """HTK regression deltas: d_t = Σ_{n=1..W} n · (c_{t+n} - c_{t-n}) / (2 Σ_{n=1..W} n²).

    Frames past either end repeat the edge frame (python_speech_features' delta). order > 1
    applies the formula again to the result (order 2 gives delta-deltas, "accelerations").

    Args:
        features: (..., frames, coefficients).
        width: W, frames on each side (2 in HTK).
        order: how many times to differentiate, >= 1.
    Returns:
        (..., frames, coefficients), same module and dtype.
    """
    if width < 1 or order < 1:
        raise ValueError(f"deltas: width and order must be >= 1, got width={width}, "
                         f"order={order}")
    xp = array_module(features)
    frames = features.shape[-2]
    denominator = 2 * sum(n * n for n in range(1, width + 1))
    result = features
    for _ in range(order):
        ends = [(0, 0)] * (result.ndim - 2) + [(width, width), (0, 0)]
        padded = xp.pad(result, ends, mode="edge")
        total = xp.zeros_like(result)
        for n in range(1, width + 1):  # over the few window offsets, not over frames
            total += n * (padded[..., width + n:width + n + frames, :]
                          - padded[..., width - n:width - n + frames, :])
        result = total / result.dtype.type(denominator)
    return result


def cmvn(features: Array, variance: bool = True, window: int | None = None,
         eps: float = 1e-10) -> Array:
    """Cepstral mean (and variance) normalisation over the frames of each utterance.

    Args:
        features: (..., frames, coefficients).
        variance: also divide by the standard deviation.
        window: None normalises by the whole utterance; an int normalises each frame by the
            frames in a centred window of that many frames (cut at the ends), like Kaldi's
            apply-cmvn-sliding with --center.
        eps: added to the standard deviation so silent coefficients stay finite.
    Returns:
        (..., frames, coefficients), same module and dtype.
    """
    xp = array_module(features)
    if window is None:
        mean = features.mean(axis=-2, keepdims=True)
        centred = features - mean
        if not variance:
            return centred
        return centred / (features.std(axis=-2, keepdims=True) + features.dtype.type(eps))
    if window < 1:
        raise ValueError(f"cmvn: window must be a positive number of frames or None, "
                         f"got {window}")
    frames = features.shape[-2]
    start = xp.arange(frames) - window // 2
    lo = xp.clip(start, 0, frames)
    hi = xp.clip(start + window, 0, frames)
    count = (hi - lo).astype(features.dtype)[:, None]
    zeros = xp.zeros(features.shape[:-2] + (1, features.shape[-1]), dtype=features.dtype)
    # running sums in float64: differences of large cumulative sums lose float32 digits
    sums = xp.concatenate([zeros, features], axis=-2).astype(np.float64).cumsum(axis=-2)
    mean = ((sums[..., hi, :] - sums[..., lo, :]) / count).astype(features.dtype)
    centred = features - mean
    if not variance:
        return centred
    squares = xp.concatenate([zeros, features], axis=-2).astype(np.float64) ** 2
    squares = squares.cumsum(axis=-2)
    mean_square = (squares[..., hi, :] - squares[..., lo, :]) / count
    std = xp.sqrt(xp.maximum(mean_square - mean.astype(np.float64) ** 2, 0.0))
    return centred / (std.astype(features.dtype) + features.dtype.type(eps))


__all__ = ["cmvn", "deltas"]
