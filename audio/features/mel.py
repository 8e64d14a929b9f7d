"""The mel stage of the MFCC chain: the mel scale, the triangular filterbank, the log.

A power spectrum (..., frames, 1 + n_fft // 2) times the filterbank's transpose gives band
energies (..., frames, n_mels) (audio.features.melspectrogram does it for a preset); log_mel
compresses them. Two scales: Slaney's (librosa's default) and HTK's; two ways to place the
filters: in Hz at each bin's centre frequency (librosa.filters.mel) or on FFT bins
(python_speech_features' get_filterbanks).
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache
from types import ModuleType

import numpy as np

from audio.backend import Array, array_module
from audio.features.constants import EPS, constant

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


def vtlp_warp(hz: np.ndarray | float, alpha: float, sample_rate: float,
              boundary_hz: float | None = None) -> np.ndarray:
    """Vocal tract length perturbation's piecewise-linear frequency warp (Jaitly & Hinton, 2013).

    A longer or shorter vocal tract scales a voice's formants by about the same factor, so
    scaling the frequency axis by ``alpha`` makes a new speaker of the same words. Above a
    boundary the line bends so that Nyquist (N) stays where it is and nothing leaves the band:

        b     = boundary_hz · min(alpha, 1) / alpha
        f'    = alpha · f                                          for f <= b
        f'    = N - (N - boundary_hz · min(alpha, 1)) / (N - b) · (N - f)   for f > b

    Args:
        hz: frequencies in Hz, each in [0, N].
        alpha: warp factor, > 0 (0.9-1.1 in the paper); 1 is the identity.
        sample_rate: Hz; N = sample_rate / 2.
        boundary_hz: where the warp bends; None means 0.85 · N (3.4 kHz at 8 kHz).
    Returns:
        Warped frequencies in Hz, float64, same shape; monotonic, 0 -> 0 and N -> N.
    """
    nyquist = sample_rate / 2.0
    boundary = 0.85 * nyquist if boundary_hz is None else float(boundary_hz)
    if not alpha > 0:
        raise ValueError(f"vtlp_warp: alpha must be > 0, got {alpha}")
    if not 0 < boundary < nyquist:
        raise ValueError(f"vtlp_warp: boundary_hz must be in (0, sample_rate / 2 = {nyquist} Hz), "
                         f"got {boundary}")
    hz = np.asarray(hz, dtype=np.float64)
    bend = boundary * min(alpha, 1.0) / alpha
    upper = nyquist - (nyquist - boundary * min(alpha, 1.0)) / (nyquist - bend) * (nyquist - hz)
    return np.where(hz <= bend, alpha * hz, upper)


@lru_cache(maxsize=64)
def _mel_filterbank_numpy(sample_rate: float, n_fft: int, n_mels: int, fmin: float,
                          fmax: float, scale: str, norm: str | float | None,
                          bin_rounded: bool, vtlp_alpha: float = 1.0,
                          vtlp_boundary_hz: float | None = None) -> np.ndarray:
    n_bins = 1 + n_fft // 2
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(fmin, scale), hz_to_mel(fmax, scale),
                                     n_mels + 2), scale)
    if vtlp_alpha != 1.0:
        edges_hz = vtlp_warp(edges_hz, vtlp_alpha, sample_rate, vtlp_boundary_hz)
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
                   dtype: np.dtype | type = np.float32, xp: ModuleType = np, *,
                   vtlp_alpha: float = 1.0, vtlp_boundary_hz: float | None = None) -> Array:
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
        vtlp_alpha, vtlp_boundary_hz: move every filter edge f to vtlp_warp(f, vtlp_alpha,
            sample_rate, vtlp_boundary_hz) before drawing the triangles: the filterbank of a
            speaker with a vocal tract 1 / alpha times as long. Training draws alpha anew each
            time an utterance is used (about 0.9-1.1); 1.0 (the default) is no warp.
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
            bool(bin_rounded), float(vtlp_alpha),
            None if vtlp_boundary_hz is None else float(vtlp_boundary_hz))
    _mel_filterbank_numpy(*args)  # validates (and warns) before caching the cast
    return constant(xp, _mel_filterbank_numpy, args, dtype)


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


__all__ = ["hz_to_mel", "log_mel", "mel_filterbank", "mel_to_hz", "vtlp_warp"]
