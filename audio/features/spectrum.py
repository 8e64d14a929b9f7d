"""The frequency domain of the MFCC chain: the power spectrum of each frame.

Frames (..., frames, frame_length) in, power (..., frames, 1 + n_fft // 2) out; the array
module comes from the input.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from audio.backend import Array, array_module

def power_spectrum(frames: Array, n_fft: int, normalize: bool = False) -> Array:
    """|FFT|² of each frame, on the 1 + n_fft // 2 non-negative frequencies.

    Args:
        frames: (..., frames, frame_length). Frames shorter than n_fft are zero-padded, longer
            ones truncated (numpy's rfft rule, which python_speech_features inherits).
        n_fft: FFT size.
        normalize: divide by n_fft, as python_speech_features' powspec does; librosa does not.
    Returns:
        (..., frames, 1 + n_fft // 2), power in (signal units)², same module; float dtype of
        frames.
    """
    xp = array_module(frames)
    # scipy's pocketfft transforms float32 in float32 and was the faster of the two when this
    # was measured (benchmarks/mfcc.py times the chain)
    fft = scipy.fft if xp is np else xp.fft
    frame_length = frames.shape[-1]
    if frame_length < n_fft:
        # zero-pad into one contiguous buffer ourselves rather than letting the FFT pad each
        # row: steadier on big batches (benchmarks/mfcc.py, the batched runs)
        padded = xp.zeros(frames.shape[:-1] + (n_fft,), dtype=frames.dtype)
        padded[..., :frame_length] = frames
        frames = padded
    spectrum = fft.rfft(frames[..., :n_fft], axis=-1)
    power = spectrum.real ** 2 + spectrum.imag ** 2
    power = power.astype(frames.dtype, copy=False)
    if normalize:
        power *= frames.dtype.type(1.0 / n_fft)
    return power



__all__ = ["power_spectrum"]
