"""The time domain of the MFCC chain: pre-emphasis, padding, framing, windows.

A signal is (samples,) or (batch, samples); frames are (..., frames, frame_length). The array
module comes from the input, so a cupy batch runs on the GPU. ``overlap_add`` undoes framing
(the phase vocoder of audio.augment and the spectral subtraction of audio.denoise use it).
"""

from __future__ import annotations

from functools import lru_cache
from types import ModuleType

import numpy as np

from audio.backend import Array, array_module
from audio.features.constants import constant

WINDOWS = ("rectangular", "hann", "hamming", "povey")


def pre_emphasis(signal: Array, coefficient: float = 0.97) -> Array:
    """First-order high-pass filter: y[0] = x[0], y[n] = x[n] - coefficient · x[n-1].

    Lifts the high frequencies that voiced speech loses about 6 dB per octave to (the glottal
    source's spectral tilt), as HTK and python_speech_features do before framing.

    Args:
        signal: (samples,) or (batch, samples), float, numpy or cupy.
        coefficient: 0 returns the signal unchanged; 0.97 is HTK's and psf's usual value.
    Returns:
        Same shape, module and dtype as ``signal``.
    """
    if coefficient == 0:
        return signal
    xp = array_module(signal)
    return xp.concatenate(
        [signal[..., :1], signal[..., 1:] - signal.dtype.type(coefficient) * signal[..., :-1]],
        axis=-1)


def pad_signal(signal: Array, frame_length: int, hop_length: int, mode: str = "center") -> Array:
    """Zero-pad a signal so that framing covers all of it.

    Args:
        signal: (samples,) or (batch, samples).
        frame_length: samples per frame (n_fft for "center").
        hop_length: samples between frame starts.
        mode: "center" (librosa, center=True, pad_mode="constant"): frame_length // 2 zeros
            on both sides, so frame t is centred on sample t · hop_length and there are
            1 + samples // hop_length frames (for even frame_length).
            "end" (python_speech_features' framesig): zeros after the end only, up to
            (num_frames - 1) · hop_length + frame_length samples, where num_frames is 1 for
            samples <= frame_length, else 1 + ceil((samples - frame_length) / hop_length).
    Returns:
        (..., padded_samples), same module and dtype.
    """
    xp = array_module(signal)
    samples = signal.shape[-1]
    if mode == "center":
        before = after = frame_length // 2
    elif mode == "end":
        before, after = 0, padded_length_end(samples, frame_length, hop_length) - samples
    else:
        raise ValueError(f"pad_signal: mode must be 'center' or 'end', got {mode!r}")
    if before == after == 0:
        return signal
    # concatenate, not xp.pad: the same zeros with less overhead per call, which counts on
    # short signals (benchmarks/mfcc.py times the chain per file)
    pieces = [xp.zeros(signal.shape[:-1] + (before,), dtype=signal.dtype), signal,
              xp.zeros(signal.shape[:-1] + (after,), dtype=signal.dtype)]
    return xp.concatenate(pieces, axis=-1)


def padded_length_end(samples: int, frame_length: int, hop_length: int) -> int:
    """Length after python_speech_features' end padding (see pad_signal, mode="end")."""
    if samples <= frame_length:
        num_frames = 1
    else:
        num_frames = 1 + -(-(samples - frame_length) // hop_length)  # integer ceil
    return (num_frames - 1) * hop_length + frame_length


def frame_signal(signal: Array, frame_length: int, hop_length: int) -> Array:
    """Cut a signal into overlapping frames, without padding.

    Args:
        signal: (samples,) or (batch, samples), float, numpy or cupy.
        frame_length: samples per frame (400 is 25 ms at 16 kHz).
        hop_length: samples between frame starts (160 is 10 ms at 16 kHz).
    Returns:
        (..., 1 + (samples - frame_length) // hop_length, frame_length), same module and dtype.
        A partial last frame is dropped; pad_signal first to keep it. For numpy this is a
        read-only view that shares the signal's memory (no copy); copy it to write into it.
    """
    xp = array_module(signal)
    samples = signal.shape[-1]
    if samples < frame_length:
        raise ValueError(f"frame_signal: got {samples} samples, fewer than one frame "
                         f"(frame_length={frame_length}); pad the signal or shorten the frame")
    num_frames = 1 + (samples - frame_length) // hop_length
    if xp is np:
        # a read-only strided view: frame t starts hop_length samples after frame t-1
        step = signal.strides[-1]
        return np.lib.stride_tricks.as_strided(
            signal, shape=signal.shape[:-1] + (num_frames, frame_length),
            strides=signal.strides[:-1] + (hop_length * step, step), writeable=False)
    starts = hop_length * xp.arange(num_frames)[:, None]
    return signal[..., starts + xp.arange(frame_length)]


def overlap_add(frames: Array, hop_length: int) -> Array:
    """Sum frames back into one signal, frame t starting at t · hop_length: frame_signal undone.

    Args:
        frames: (..., frames, frame_length), frame_length a multiple of hop_length.
        hop_length: samples between frame starts.
    Returns:
        (..., (frames - 1) · hop_length + frame_length), same module and dtype.
    """
    xp = array_module(frames)
    *lead, count, frame_length = frames.shape
    if frame_length % hop_length:
        raise ValueError(f"overlap_add: frame_length={frame_length} must be a multiple of "
                         f"hop_length={hop_length}")
    overlap = frame_length // hop_length
    out = xp.zeros((*lead, (count - 1) * hop_length + frame_length), dtype=frames.dtype)
    # Frames j, j + overlap, j + 2·overlap, ... touch end to end: each group is one slice add.
    for offset in range(min(overlap, count)):  # over the few overlap offsets, not over frames
        group = frames[..., offset::overlap, :]
        flat = group.reshape(*lead, group.shape[-2] * frame_length)
        start = offset * hop_length
        out[..., start:start + flat.shape[-1]] += flat
    return out


@lru_cache(maxsize=64)
def _window_numpy(name: str, win_length: int, n_fft: int | None) -> np.ndarray:
    n = np.arange(win_length)
    if name == "rectangular":
        w = np.ones(win_length)
    elif name == "hann":  # periodic, as scipy.signal.get_window("hann", N, fftbins=True)
        w = 0.5 - 0.5 * np.cos(2 * np.pi * n / win_length)
    elif name == "hamming":  # periodic, as scipy.signal.get_window("hamming", N)
        w = 0.54 - 0.46 * np.cos(2 * np.pi * n / win_length)
    elif name == "povey":  # Kaldi: symmetric Hann raised to 0.85
        w = (0.5 - 0.5 * np.cos(2 * np.pi * n / max(win_length - 1, 1))) ** 0.85
    else:
        raise ValueError(f"window: name must be one of {WINDOWS}, got {name!r}")
    if n_fft is not None and n_fft != win_length:
        if n_fft < win_length:
            raise ValueError(f"window: win_length={win_length} is longer than n_fft={n_fft}")
        left = (n_fft - win_length) // 2  # librosa.util.pad_center
        w = np.pad(w, (left, n_fft - win_length - left))
    w.setflags(write=False)
    return w


def window(name: str, win_length: int, n_fft: int | None = None,
           dtype: np.dtype | type = np.float32, xp: ModuleType = np) -> Array:
    """A tapering window, optionally zero-padded on both sides to n_fft (librosa's pad_center).

    Args:
        name: "rectangular" (all ones, psf's default), "hann" (periodic: 0.5 - 0.5 cos(2πn/N)),
            "hamming" (periodic: 0.54 - 0.46 cos(2πn/N)), or "povey" (Kaldi:
            (0.5 - 0.5 cos(2πn/(N-1)))^0.85).
        win_length: N, samples.
        n_fft: total length; the window sits in the middle. None means win_length.
        dtype, xp: dtype and array module of the result.
    Returns:
        (n_fft or win_length,), read-only when numpy; multiply frames by it, never write to it.
    """
    args = (name, int(win_length), None if n_fft is None else int(n_fft))
    _window_numpy(*args)  # validates before caching the cast
    return constant(xp, _window_numpy, args, dtype)


def apply_window(frames: Array, name: str, win_length: int | None = None) -> Array:
    """Multiply every frame by a window (see ``window``); "rectangular" returns frames unchanged.

    Args:
        frames: (..., frames, frame_length).
        name: window name.
        win_length: samples of the window, centred in frame_length; None is the frame length.
    Returns:
        (..., frames, frame_length), same module and dtype.
    """
    frame_length = frames.shape[-1]
    if name == "rectangular" and (win_length is None or win_length == frame_length):
        return frames
    w = window(name, win_length or frame_length, frame_length, frames.dtype,
               array_module(frames))
    return frames * w


__all__ = ["WINDOWS", "apply_window", "frame_signal", "overlap_add", "pad_signal",
           "padded_length_end", "pre_emphasis", "window"]
