"""MFCC features, one stage per function: pre-emphasis, padding, framing, window, power
spectrum, mel filterbank, log, DCT, lifter; plus deltas and CMVN.

Arrays in, arrays out, time-major: a signal is (samples,) or (batch, samples); frames are
(..., frames, frame_length); spectra and features (..., frames, bins). The array module comes
from the input, so a cupy batch runs on the GPU. Two presets reproduce two libraries:

    preset="librosa"   librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13).T: centred zero padding,
                       periodic Hann window over n_fft=2048, hop 512, |STFT|², 128 Slaney mels
                       with Slaney area norm, 10·log10 clipped to 80 dB below the loudest bin,
                       DCT-II (ortho).
    preset="htk"       python_speech_features.mfcc(signal, samplerate=sr): pre-emphasis 0.97,
                       25 ms frames every 10 ms with the last frame zero-padded, rectangular
                       window, |FFT|²/512, 26 HTK mels placed on FFT bins, natural log floored
                       at machine epsilon, DCT-II (ortho), lifter 22, log energy in place of C0.

Constant matrices (window, mel filterbank, DCT) are built once per parameter set and cached
(functools.lru_cache); the cached arrays are read-only, never written in place.
"""

from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from types import ModuleType

import numpy as np
import scipy.fft

from audio.backend import Array, array_module

#: float64 machine epsilon: the floor python_speech_features puts under energies before log
EPS = float(np.finfo(np.float64).eps)

WINDOWS = ("rectangular", "hann", "hamming", "povey")


# ---------------------------------------------------------------------------------------------
# Time domain
# ---------------------------------------------------------------------------------------------

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
    # concatenate, not xp.pad: same result, a tenth of the overhead on short signals
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
    return _constant(xp, _window_numpy, args, dtype)


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


# ---------------------------------------------------------------------------------------------
# Frequency domain
# ---------------------------------------------------------------------------------------------

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
    # scipy's pocketfft transforms float32 in float32, about twice as fast as numpy.fft here
    fft = scipy.fft if xp is np else xp.fft
    frame_length = frames.shape[-1]
    if frame_length < n_fft:
        # zero-pad into one contiguous buffer ourselves: steadier and faster on big batches
        # than letting the FFT pad each row
        padded = xp.zeros(frames.shape[:-1] + (n_fft,), dtype=frames.dtype)
        padded[..., :frame_length] = frames
        frames = padded
    spectrum = fft.rfft(frames[..., :n_fft], axis=-1)
    power = spectrum.real ** 2 + spectrum.imag ** 2
    power = power.astype(frames.dtype, copy=False)
    if normalize:
        power *= frames.dtype.type(1.0 / n_fft)
    return power


def hz_to_mel(hz: np.ndarray | float, scale: str = "slaney") -> np.ndarray:
    """Hz to mel. "htk": 2595 · log10(1 + f / 700). "slaney": linear below 1 kHz
    (f / (200/3)), logarithmic above (15 + 27 · ln(f / 1000) / ln 6.4), as in librosa."""
    hz = np.asarray(hz, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    if scale != "slaney":
        raise ValueError(f"hz_to_mel: scale must be 'htk' or 'slaney', got {scale!r}")
    linear = hz / (200.0 / 3)
    logarithmic = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, logarithmic, linear)


def mel_to_hz(mel: np.ndarray | float, scale: str = "slaney") -> np.ndarray:
    """Inverse of hz_to_mel for the same scale."""
    mel = np.asarray(mel, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    if scale != "slaney":
        raise ValueError(f"mel_to_hz: scale must be 'htk' or 'slaney', got {scale!r}")
    linear = mel * (200.0 / 3)
    logarithmic = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, logarithmic, linear)


@lru_cache(maxsize=64)
def _mel_filterbank_numpy(sample_rate: float, n_fft: int, n_mels: int, fmin: float,
                          fmax: float, scale: str, norm: str | float | None,
                          bin_rounded: bool) -> np.ndarray:
    n_bins = 1 + n_fft // 2
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(fmin, scale), hz_to_mel(fmax, scale),
                                     n_mels + 2), scale)
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    if bin_rounded:
        # python_speech_features: edges snap down to FFT bins, floor((n_fft + 1) · f / sr),
        # and triangles are drawn on bin indices; a zero-width side stays empty.
        bins = np.floor((n_fft + 1) * edges_hz / sample_rate)
        lower, centre, upper = bins[:-2, None], bins[1:-1, None], bins[2:, None]
        k = np.arange(n_bins, dtype=np.float64)[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            rising = np.where((k >= lower) & (k < centre), (k - lower) / (centre - lower), 0.0)
            falling = np.where((k >= centre) & (k < upper), (upper - k) / (upper - centre), 0.0)
        weights = rising + falling
    else:
        # librosa.filters.mel: triangles in Hz over the bin centre frequencies
        freqs = np.linspace(0.0, sample_rate / 2.0, n_bins)[None, :]
        rising = (freqs - lower) / (centre - lower)
        falling = (upper - freqs) / (upper - centre)
        weights = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        # equal area per filter: each triangle scaled by 2 / (its width in Hz)
        weights = weights * (2.0 / (upper - lower))
    elif norm is not None:
        if isinstance(norm, str) or not norm > 0:
            raise ValueError(f"mel_filterbank: norm must be 'slaney', None or a positive "
                             f"number (an L^p norm), got {norm!r}")
        if math.isinf(norm):
            size = np.abs(weights).max(axis=1, keepdims=True)
        else:
            size = (np.abs(weights) ** norm).sum(axis=1, keepdims=True) ** (1.0 / norm)
        weights = weights / np.where(size > 0, size, 1.0)
    empty = weights.max(axis=1) <= 0
    if np.any(empty & (edges_hz[:-2] > 0)):
        warnings.warn(f"mel_filterbank: filters {np.flatnonzero(empty).tolist()} are empty "
                      f"(n_mels={n_mels} is too many for n_fft={n_fft} at {sample_rate} Hz); "
                      f"they will always output zero", stacklevel=3)
    weights.setflags(write=False)
    return weights


def mel_filterbank(sample_rate: float, n_fft: int, n_mels: int = 128, fmin: float = 0.0,
                   fmax: float | None = None, scale: str = "slaney",
                   norm: str | float | None = "slaney", bin_rounded: bool = False,
                   dtype: np.dtype | type = np.float32, xp: ModuleType = np) -> Array:
    """Triangular mel filters that turn a power spectrum into n_mels band energies.

    The n_mels + 2 edge frequencies are equally spaced in mel between fmin and fmax; filter m
    rises from edge m to edge m+1 and falls to edge m+2.

    Args:
        sample_rate: Hz.
        n_fft: FFT size; the filters cover its 1 + n_fft // 2 bins.
        n_mels: number of filters.
        fmin, fmax: lowest and highest edge in Hz; fmax None means sample_rate / 2.
        scale: "slaney" (librosa's default, linear below 1 kHz) or "htk" (2595 · log10(1 + f/700)).
        norm: "slaney" (divide each filter by half its width in Hz: equal area), None (peak 1),
            or a number p (unit L^p norm, as librosa.util.normalize).
        bin_rounded: place the edges on FFT bins, floor((n_fft + 1) · f / sample_rate), and draw
            the triangles in bin units, as python_speech_features' get_filterbanks does;
            otherwise (librosa.filters.mel) draw them in Hz at each bin's centre frequency.
        dtype, xp: dtype and array module of the result.
    Returns:
        (n_mels, 1 + n_fft // 2) weights; band energies are ``power @ weights.T``. Read-only
        when numpy (cached): copy before changing it.
    Warns:
        UserWarning when a filter is empty (too many mels for the FFT resolution), like librosa.
    """
    fmax = sample_rate / 2.0 if fmax is None else fmax
    if not 0 <= fmin < fmax <= sample_rate / 2.0 + 1e-9:
        raise ValueError(f"mel_filterbank: need 0 <= fmin < fmax <= sample_rate / 2 = "
                         f"{sample_rate / 2.0} Hz, got fmin={fmin}, fmax={fmax}")
    if scale not in ("slaney", "htk"):
        raise ValueError(f"mel_filterbank: scale must be 'slaney' or 'htk', got {scale!r}")
    args = (float(sample_rate), int(n_fft), int(n_mels), float(fmin), float(fmax), scale, norm,
            bool(bin_rounded))
    _mel_filterbank_numpy(*args)  # validates (and warns) before caching the cast
    return _constant(xp, _mel_filterbank_numpy, args, dtype)


def log_mel(mel: Array, kind: str = "db", top_db: float | None = 80.0, amin: float = 1e-10,
            floor: float = EPS) -> Array:
    """Compress band energies with a logarithm.

    Args:
        mel: (..., frames, n_mels) band energies, >= 0.
        kind: "db": 10 · log10(max(mel, amin)) (librosa.power_to_db with ref=1.0), then,
            if top_db is not None, clipped from below at (loudest value - top_db), the loudest
            value taken over each utterance's frames and bands (so a dB log with top_db depends
            on the whole utterance and cannot be computed in a stream).
            "natural": ln(max(mel, floor)), as python_speech_features (floor = float64 eps).
        top_db: dB of dynamic range kept by "db"; None or inf keeps all.
        amin: power floor of "db".
        floor: energy floor of "natural".
    Returns:
        (..., frames, n_mels) dB or nepers, same module and dtype.
    """
    xp = array_module(mel)
    if kind == "natural":
        return xp.log(xp.maximum(mel, mel.dtype.type(floor)))
    if kind != "db":
        raise ValueError(f"log_mel: kind must be 'db' or 'natural', got {kind!r}")
    db = 10.0 * xp.log10(xp.maximum(mel, mel.dtype.type(amin)))
    if top_db is not None and not math.isinf(top_db):
        if top_db < 0:
            raise ValueError(f"log_mel: top_db must be >= 0 dB or None, got {top_db}")
        loudest = db.max(axis=(-2, -1), keepdims=True)
        db = xp.maximum(db, loudest - db.dtype.type(top_db))
    return db


@lru_cache(maxsize=64)
def _dct_matrix_numpy(n_in: int, n_out: int) -> np.ndarray:
    k = np.arange(n_out)[None, :]
    n = np.arange(n_in)[:, None]
    basis = np.sqrt(2.0 / n_in) * np.cos(np.pi * k * (2 * n + 1) / (2 * n_in))
    basis[:, 0] = np.sqrt(1.0 / n_in)  # ortho scaling of the constant term
    basis.setflags(write=False)
    return basis


def dct(x: Array, n_out: int | None = None) -> Array:
    """DCT-II with orthonormal scaling along the last axis, first n_out coefficients.

    y[k] = s_k · Σ_n x[n] · cos(π k (2n + 1) / (2N)), s_0 = sqrt(1/N), s_k = sqrt(2/N):
    scipy.fft.dct(x, type=2, norm="ortho")[..., :n_out], as one matrix product.

    Args:
        x: (..., N), e.g. (frames, n_mels) log energies.
        n_out: coefficients kept (n_mfcc); None keeps N.
    Returns:
        (..., n_out), same module and dtype.
    """
    n_in = x.shape[-1]
    n_out = n_in if n_out is None else int(n_out)
    if not 0 < n_out <= n_in:
        raise ValueError(f"dct: n_out must be between 1 and the input size {n_in}, got {n_out}")
    xp = array_module(x)
    return _matmul_last(x, _constant(xp, _dct_matrix_numpy, (n_in, n_out), x.dtype))


def _matmul_last(x: Array, matrix: Array) -> Array:
    """x (..., n) @ matrix (n, m) -> (..., m) as one 2-D product: numpy's stacked matmul
    does not reach BLAS for a transposed right operand and runs ten times slower."""
    return (x.reshape(-1, x.shape[-1]) @ matrix).reshape(*x.shape[:-1], matrix.shape[-1])


def lifter(cepstra: Array, lifter: float = 22.0, first_index: int = 0) -> Array:
    """Sinusoidal cepstral lifter: c_n · (1 + (L/2) · sin(π (n + first_index) / L)).

    Args:
        cepstra: (..., frames, n_mfcc).
        lifter: L; 0 returns the cepstra unchanged. 22 is HTK's and python_speech_features'.
        first_index: 0 numbers coefficients from 0 (HTK, python_speech_features, leaves C0);
            1 from 1 (librosa.feature.mfcc's lifter argument).
    Returns:
        (..., frames, n_mfcc), same module and dtype.
    """
    if lifter == 0:
        return cepstra
    if lifter < 0:
        raise ValueError(f"lifter: L must be >= 0 (0 disables it), got {lifter}")
    args = (cepstra.shape[-1], float(lifter), int(first_index))
    return cepstra * _constant(array_module(cepstra), _lifter_numpy, args, cepstra.dtype)


@lru_cache(maxsize=64)
def _lifter_numpy(n_mfcc: int, lifter: float, first_index: int) -> np.ndarray:
    n = np.arange(n_mfcc) + first_index
    weights = 1.0 + (lifter / 2.0) * np.sin(np.pi * n / lifter)
    weights.setflags(write=False)
    return weights


# ---------------------------------------------------------------------------------------------
# Post-processing
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# The whole chain
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MFCCOptions:
    """Every setting of the MFCC chain, resolved from a preset and overrides (see mfcc)."""

    sample_rate: int
    n_mfcc: int
    n_fft: int
    hop_length: int
    win_length: int
    n_mels: int
    fmin: float
    fmax: float
    window: str
    pre_emphasis: float
    lifter: float
    lifter_first_index: int
    top_db: float | None
    append_energy: bool
    padding: str          # "center" or "end", see pad_signal
    frame_length: int     # samples cut per frame: n_fft for "center", win_length for "end"
    normalize_power: bool
    mel_scale: str
    mel_norm: str | None
    bin_rounded: bool
    log: str              # "db" or "natural", see log_mel


PRESETS = ("librosa", "htk")


def _round_half_up(x: float) -> int:
    # python_speech_features rounds frame lengths in seconds x rate half up, via Decimal
    return int(Decimal(x).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


@lru_cache(maxsize=128)  # resolving costs more than a short file's FFTs; options are frozen
def mfcc_options(sample_rate: int, n_mfcc: int = 13, preset: str = "librosa", *,
                 n_fft: int | None = None, hop_length: int | None = None,
                 win_length: int | None = None, n_mels: int | None = None,
                 fmin: float | None = None, fmax: float | None = None,
                 window: str | None = None, pre_emphasis: float | None = None,
                 lifter: float | None = None, top_db: float | None = None,
                 append_energy: bool | None = None) -> MFCCOptions:
    """Resolve a preset and overrides (None = the preset's value) into MFCCOptions.

    Raises ValueError naming the option for a value out of range. See mfcc for the meaning.
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) \
            or sample_rate <= 0:
        raise ValueError(f"mfcc: sample_rate must be a positive integer (Hz), "
                         f"got {sample_rate!r}")
    if preset == "librosa":
        n_fft = 2048 if n_fft is None else n_fft
        win_length = n_fft if win_length is None else win_length
        hop_length = 512 if hop_length is None else hop_length  # melspectrogram's default
        options = dict(
            n_mels=128, fmin=0.0, window="hann", pre_emphasis=0.0, lifter=0.0,
            lifter_first_index=1, top_db=80.0, append_energy=False, padding="center",
            frame_length=n_fft, normalize_power=False, mel_scale="slaney", mel_norm="slaney",
            bin_rounded=False, log="db")
    elif preset == "htk":
        if top_db is not None:
            raise ValueError(f"mfcc: top_db={top_db} applies to the dB log of preset "
                             f"'librosa'; preset 'htk' takes a natural log without clipping")
        n_fft = 512 if n_fft is None else n_fft
        # python_speech_features: winlen 0.025 s, winstep 0.01 s, rounded half up
        win_length = _round_half_up(0.025 * sample_rate) if win_length is None else win_length
        hop_length = _round_half_up(0.01 * sample_rate) if hop_length is None else hop_length
        options = dict(
            n_mels=26, fmin=0.0, window="rectangular", pre_emphasis=0.97, lifter=22.0,
            lifter_first_index=0, top_db=None, append_energy=True, padding="end",
            frame_length=win_length, normalize_power=True, mel_scale="htk", mel_norm=None,
            bin_rounded=True, log="natural")
    else:
        raise ValueError(f"mfcc: preset must be one of {PRESETS}, got {preset!r}")
    overrides = dict(n_mels=n_mels, fmin=fmin, window=window, pre_emphasis=pre_emphasis,
                     lifter=lifter, top_db=top_db, append_energy=append_energy)
    options.update({key: value for key, value in overrides.items() if value is not None})
    resolved = MFCCOptions(sample_rate=int(sample_rate), n_mfcc=int(n_mfcc), n_fft=int(n_fft),
                           hop_length=int(hop_length), win_length=int(win_length),
                           fmax=sample_rate / 2.0 if fmax is None else float(fmax), **options)
    _check_options(resolved)
    return resolved


def _check_options(o: MFCCOptions) -> None:
    for name in ("n_mfcc", "n_fft", "hop_length", "win_length", "n_mels"):
        value = getattr(o, name)
        if value < 1:
            raise ValueError(f"mfcc: {name} must be a positive integer, got {value}")
    if o.padding == "center" and o.win_length > o.n_fft:
        raise ValueError(f"mfcc: win_length={o.win_length} must be <= n_fft={o.n_fft}")
    if o.padding == "end" and o.win_length > o.n_fft:
        warnings.warn(f"mfcc: frames of win_length={o.win_length} samples are longer than "
                      f"n_fft={o.n_fft} and will be truncated (as python_speech_features "
                      f"does); raise n_fft", stacklevel=3)
    if o.n_mfcc > o.n_mels:
        raise ValueError(f"mfcc: n_mfcc={o.n_mfcc} must be <= n_mels={o.n_mels}")
    if o.window not in WINDOWS:
        raise ValueError(f"mfcc: window must be one of {WINDOWS}, got {o.window!r}")
    if not 0 <= o.pre_emphasis < 1:
        raise ValueError(f"mfcc: pre_emphasis must be in [0, 1), got {o.pre_emphasis}")
    if o.lifter < 0:
        raise ValueError(f"mfcc: lifter must be >= 0 (0 disables it), got {o.lifter}")
    if o.top_db is not None and o.top_db < 0:
        raise ValueError(f"mfcc: top_db must be >= 0 dB, got {o.top_db}")


def _as_float_signal(signal: Array, where: str) -> Array:
    xp = array_module(signal)
    signal = xp.asarray(signal)
    if signal.ndim not in (1, 2):
        raise ValueError(f"{where}: signal must be (samples,) or (batch, samples), "
                         f"got shape {tuple(signal.shape)}")
    if signal.shape[-1] == 0:
        raise ValueError(f"{where}: signal has zero samples (shape {tuple(signal.shape)})")
    if signal.dtype.kind != "f":
        if signal.dtype.kind not in "iub":
            raise ValueError(f"{where}: signal must hold real numbers, got dtype {signal.dtype}")
        signal = signal.astype(np.float32)
    return signal


def mfcc(signal: Array, sample_rate: int, n_mfcc: int = 13, preset: str = "librosa", *,
         n_fft: int | None = None, hop_length: int | None = None,
         win_length: int | None = None, n_mels: int | None = None, fmin: float | None = None,
         fmax: float | None = None, window: str | None = None,
         pre_emphasis: float | None = None, lifter: float | None = None,
         top_db: float | None = None, append_energy: bool | None = None) -> Array:
    """Mel-frequency cepstral coefficients, time-major.

    The chain, each stage a function of this module: pre_emphasis -> pad_signal ->
    frame_signal -> apply_window -> power_spectrum -> mel_filterbank -> log_mel -> dct ->
    lifter (-> log energy in place of C0). Every keyword left at None takes the preset's
    value; names follow librosa.

    Args:
        signal: (samples,) or (batch, samples), numpy or cupy; float32 stays float32, float64
            stays float64, integers become float32. A batch runs as one array program.
        sample_rate: Hz.
        n_mfcc: coefficients per frame.
        preset: "librosa" (librosa.feature.mfcc defaults: n_fft 2048, hop 512,
            hann, 128 Slaney mels, dB with top_db 80) or "htk" (python_speech_features.mfcc
            defaults: 25 ms / 10 ms rectangular frames, n_fft 512, 26 bin-rounded HTK mels,
            pre-emphasis 0.97, natural log, lifter 22, log energy as C0).
        n_fft: FFT size. hop_length: samples between frames. win_length: window samples.
        n_mels: mel filters. fmin, fmax: filterbank edges in Hz (fmax None: sample_rate / 2).
        window: "rectangular", "hann", "hamming" or "povey".
        pre_emphasis: coefficient, 0 for none.
        lifter: L of the sinusoidal lifter, 0 for none (librosa numbering for "librosa",
            HTK numbering for "htk"; see the lifter function).
        top_db: dB range kept by the "librosa" dB log, per utterance; math.inf keeps all.
            Not accepted by "htk", whose log is natural.
        append_energy: replace C0 by ln(frame energy), the sum of the frame's power spectrum.
    Returns:
        (frames, n_mfcc) or (batch, frames, n_mfcc), same module, float dtype of the signal.
        Frames: 1 + samples // hop_length for "librosa" (even n_fft); for "htk" 1 if
        samples <= win_length, else 1 + ceil((samples - win_length) / hop_length).
    Raises:
        ValueError: naming the option or the signal property that is out of range.
    """
    options = mfcc_options(sample_rate, n_mfcc, preset, n_fft=n_fft, hop_length=hop_length,
                           win_length=win_length, n_mels=n_mels, fmin=fmin, fmax=fmax,
                           window=window, pre_emphasis=pre_emphasis, lifter=lifter,
                           top_db=top_db, append_energy=append_energy)
    return mfcc_from_options(signal, options)


def mfcc_from_options(signal: Array, options: MFCCOptions) -> Array:
    """mfcc with settings already resolved by mfcc_options (what StreamingMFCC calls)."""
    signal = _as_float_signal(signal, "mfcc")
    xp = array_module(signal)
    if signal.ndim == 2 and xp is np:
        frames = num_frames(signal.shape[-1], options)
        block = max(1, CPU_BLOCK_BYTES // (frames * options.n_fft * signal.itemsize))
        if block < signal.shape[0]:
            # A big CPU batch goes through in blocks of utterances, as librosa.stft goes
            # through MAX_MEM_BLOCK columns at a time: temporaries of a few MB are mapped
            # fresh by malloc on every call and page-faulted in, which cost more than the
            # FFTs; blocks of a few hundred KB stay in the heap and in cache. Each block is
            # still one array program; the loop runs over blocks, not utterances.
            out = np.empty((signal.shape[0], frames, options.n_mfcc), dtype=signal.dtype)
            for start in range(0, signal.shape[0], block):
                out[start:start + block] = _mfcc_chain(signal[start:start + block], options)
            return out
    return _mfcc_chain(signal, options)


#: bytes of padded frames per block when mfcc runs a numpy batch (see mfcc_from_options)
CPU_BLOCK_BYTES = 512 * 1024


def _mfcc_chain(signal: Array, options: MFCCOptions) -> Array:
    o = options
    emphasised = pre_emphasis(signal, o.pre_emphasis)
    padded = pad_signal(emphasised, o.frame_length, o.hop_length, o.padding)
    frames = frame_signal(padded, o.frame_length, o.hop_length)
    return frames_to_mfcc(frames, o)


def frames_to_mfcc(frames: Array, options: MFCCOptions) -> Array:
    """The chain from cut frames (..., frames, frame_length) to (..., frames, n_mfcc)."""
    o = options
    xp = array_module(frames)
    windowed = apply_window(frames, o.window, o.win_length)
    power = power_spectrum(windowed, o.n_fft, normalize=o.normalize_power)
    weights = mel_filterbank(o.sample_rate, o.n_fft, o.n_mels, o.fmin, o.fmax, o.mel_scale,
                             o.mel_norm, o.bin_rounded, dtype=power.dtype, xp=xp)
    energies = _matmul_last(power, weights.T)
    logs = log_mel(energies, o.log, top_db=o.top_db)
    cepstra = lifter(dct(logs, o.n_mfcc), o.lifter, o.lifter_first_index)
    if o.append_energy:
        energy = power.sum(axis=-1)
        cepstra[..., 0] = xp.log(xp.maximum(energy, energy.dtype.type(EPS)))
    return cepstra


def num_frames(samples: int, options: MFCCOptions) -> int:
    """Frames mfcc_from_options makes from a signal of this many samples."""
    if options.padding == "center":
        padded = samples + 2 * (options.frame_length // 2)
    else:
        padded = padded_length_end(samples, options.frame_length, options.hop_length)
    return 1 + (padded - options.frame_length) // options.hop_length


# ---------------------------------------------------------------------------------------------
# Cached constants, cast once per dtype and array module
# ---------------------------------------------------------------------------------------------

@lru_cache(maxsize=256)
def _cached_constant(xp_name: str, dtype: str, builder, args: tuple) -> Array:
    host = builder(*args)
    if xp_name == "numpy":
        cast = host.astype(dtype)
        cast.setflags(write=False)
        return cast
    return sys.modules[xp_name].asarray(host, dtype=dtype)  # e.g. cupy: copied to the GPU once


def _constant(xp: ModuleType, builder, args: tuple, dtype: np.dtype | type) -> Array:
    """builder(*args) (a cached numpy constant) as ``dtype`` in module ``xp``, cached too."""
    return _cached_constant(xp.__name__, np.dtype(dtype).str, builder, args)


__all__ = [
    "EPS", "MFCCOptions", "PRESETS", "WINDOWS", "apply_window", "cmvn", "dct", "deltas",
    "frame_signal", "frames_to_mfcc", "hz_to_mel", "lifter", "log_mel", "mel_filterbank",
    "mel_to_hz", "mfcc", "mfcc_from_options", "mfcc_options", "num_frames", "overlap_add",
    "pad_signal",
    "padded_length_end", "power_spectrum", "pre_emphasis", "window",
]
