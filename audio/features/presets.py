"""The settings of the MFCC chain: two presets, each a copy of one library, and overrides.

    preset="librosa"   librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13).T: centred zero padding,
                       periodic Hann window over n_fft=2048, hop 512, |STFT|², 128 Slaney mels
                       with Slaney area norm, 10·log10 clipped to 80 dB below the loudest bin,
                       DCT-II (ortho).
    preset="htk"       python_speech_features.mfcc(signal, samplerate=sr): pre-emphasis 0.97,
                       25 ms frames every 10 ms with the last frame zero-padded, rectangular
                       window, |FFT|²/512, 26 HTK mels placed on FFT bins, natural log floored
                       at machine epsilon, DCT-II (ortho), lifter 22, log energy in place of C0.

"htk" is named for the HTK-style chain python_speech_features implements, and reproduces that
library, not HTK's HCopy. HTK itself (its book, "The HTK Book", on HCopy's defaults) differs in
named ways: a Hamming window where psf's is rectangular; pre-emphasis applied to each frame, not
to the whole signal; an FFT of the next power of two above the window (256 at 8 kHz) where psf
takes 512; filters interpolated on the mel axis rather than edges floored to FFT bins; a DCT
scaled by sqrt(2/N) where psf's is orthonormal; log energy from the frame's samples, not from
its power spectrum; and no zero-padded last frame.

mfcc_options resolves a preset and the overrides into one frozen MFCCOptions, which the chain
(audio.features.chain) and StreamingMFCC read and the feature caches hash.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

import numpy as np

from audio.features.framing import WINDOWS

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

#: What each preset does after the log, the only stages mfcc(S=...) runs: the lifter's L and
#: first index (see audio.features.lifter), and the log frame energy in place of C0.
CEPSTRAL_DEFAULTS = {
    "librosa": {"lifter": 0.0, "lifter_first_index": 1, "append_energy": False},
    "htk": {"lifter": 22.0, "lifter_first_index": 0, "append_energy": True},
}


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
            n_mels=128, fmin=0.0, window="hann", pre_emphasis=0.0, top_db=80.0,
            padding="center", frame_length=n_fft, normalize_power=False, mel_scale="slaney",
            mel_norm="slaney", bin_rounded=False, log="db", **CEPSTRAL_DEFAULTS[preset])
    elif preset == "htk":
        if top_db is not None:
            raise ValueError(f"mfcc: top_db={top_db} applies to the dB log of preset "
                             f"'librosa'; preset 'htk' takes a natural log without clipping")
        n_fft = 512 if n_fft is None else n_fft
        # python_speech_features: winlen 0.025 s, winstep 0.01 s, rounded half up
        win_length = _round_half_up(0.025 * sample_rate) if win_length is None else win_length
        hop_length = _round_half_up(0.01 * sample_rate) if hop_length is None else hop_length
        options = dict(
            n_mels=26, fmin=0.0, window="rectangular", pre_emphasis=0.97, top_db=None,
            padding="end", frame_length=win_length, normalize_power=True, mel_scale="htk",
            mel_norm=None, bin_rounded=True, log="natural", **CEPSTRAL_DEFAULTS[preset])
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


__all__ = ["CEPSTRAL_DEFAULTS", "MFCCOptions", "PRESETS", "mfcc_options"]
