"""The whole MFCC chain, and the two places a reader may enter it part way.

    signal ─pre_emphasis─pad_signal─frame_signal─► frames ─apply_window─power_spectrum─► power
    power ─mel_filterbank─► mel energies ─log_mel─► log mel ─dct─lifter─► MFCCs (time-major)

``mfcc(signal, sample_rate)`` runs it all; ``melspectrogram(S=power, ...)`` enters at the
filterbank and ``mfcc(S=log_mel)`` at the DCT, as librosa's melspectrogram(S=...) and
mfcc(S=...) do, so a stage's output can be looked at or changed and passed on.
``frames_to_mfcc`` is the part after framing, which StreamingMFCC runs on the frames a stream
completes. ``log_mel_frames`` and ``frames_to_log_mel`` stop the same chain at the log mels,
before the DCT: the features of a recogniser that reads log mel energies instead of MFCCs
(and what ``frames_to_mfcc`` itself computes first, so the two never drift apart).
"""

from __future__ import annotations

import numpy as np

from audio.backend import Array, array_module
from audio.features.cepstrum import dct, lifter
from audio.features.constants import EPS, matmul_last
from audio.features.framing import (apply_window, frame_signal, pad_signal, padded_length_end,
                                    pre_emphasis)
from audio.features.mel import log_mel, mel_filterbank
from audio.features.presets import CEPSTRAL_DEFAULTS, PRESETS, MFCCOptions, mfcc_options
from audio.features.spectrum import power_spectrum

#: bytes of padded frames per block when mfcc runs a numpy batch (see mfcc_from_options)
CPU_BLOCK_BYTES = 512 * 1024


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


def _as_spectrogram(S: Array, where: str, bins: str) -> Array:
    xp = array_module(S)
    S = xp.asarray(S)
    if S.ndim not in (2, 3):
        raise ValueError(f"{where}: S must be time-major (frames, {bins}) or (batch, frames, "
                         f"{bins}) (librosa's S is the transpose), got shape {tuple(S.shape)}")
    if S.dtype.kind != "f":
        raise ValueError(f"{where}: S must hold floats, got dtype {S.dtype}")
    return S


def _refuse_spent(where: str, stages: str, **given) -> None:
    """Options of stages that S has already been through are an error, not silently dropped."""
    spent = [name for name, value in given.items() if value is not None]
    if spent:
        raise ValueError(f"{where}: {', '.join(spent)} set{'s' if len(spent) == 1 else ''} "
                         f"{stages}, which S has already been through; leave "
                         f"{'it' if len(spent) == 1 else 'them'} out, or start from the signal")


def mfcc(signal: Array | None = None, sample_rate: int | None = None, n_mfcc: int = 13,
         preset: str = "librosa", *, S: Array | None = None, n_fft: int | None = None,
         hop_length: int | None = None, win_length: int | None = None,
         n_mels: int | None = None, fmin: float | None = None, fmax: float | None = None,
         window: str | None = None, pre_emphasis: float | None = None,
         lifter: float | None = None, top_db: float | None = None,
         append_energy: bool | None = None) -> Array:
    """Mel-frequency cepstral coefficients, time-major, from a signal or a log mel spectrogram.

    The chain, each stage a function of audio.features: pre_emphasis -> pad_signal ->
    frame_signal -> apply_window -> power_spectrum -> mel_filterbank -> log_mel -> dct ->
    lifter (-> log energy in place of C0). Every keyword left at None takes the preset's
    value; names follow librosa. With ``S`` (as librosa.feature.mfcc(S=...)) only the last
    two stages run: ``mfcc(S=log_mel(melspectrogram(y, sr)))`` equals ``mfcc(y, sr)``.

    Args:
        signal: (samples,) or (batch, samples), numpy or cupy; float32 stays float32, float64
            stays float64, integers become float32. A batch runs as one array program.
        sample_rate: Hz; required with a signal, unused with S.
        n_mfcc: coefficients per frame.
        preset: "librosa" (librosa.feature.mfcc defaults: n_fft 2048, hop 512,
            hann, 128 Slaney mels, dB with top_db 80) or "htk" (python_speech_features.mfcc
            defaults: 25 ms / 10 ms rectangular frames, n_fft 512, 26 bin-rounded HTK mels,
            pre-emphasis 0.97, natural log, lifter 22, log energy as C0).
        S: instead of a signal, a log-power mel spectrogram, time-major (frames, n_mels) or
            (batch, frames, n_mels), float: what log_mel returns (dB for "librosa", natural
            log for "htk"). The options of the stages before the DCT (n_fft, hop_length,
            win_length, n_mels, fmin, fmax, window, pre_emphasis, top_db) are then refused.
            Preset "htk" needs ``append_energy=False`` here: the frame energies it would put
            in C0 come from the power spectrum, which S no longer holds.
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
        (frames, n_mfcc) or (batch, frames, n_mfcc), same module, float dtype of the signal
        (or of S). Frames: 1 + samples // hop_length for "librosa" (even n_fft); for "htk" 1
        if samples <= win_length, else 1 + ceil((samples - win_length) / hop_length).
    Raises:
        ValueError: naming the option or the signal property that is out of range.
    """
    if S is not None:
        if signal is not None:
            raise ValueError("mfcc: pass a signal or S (a log-power mel spectrogram), not both")
        _refuse_spent("mfcc", "the stages before the DCT", n_fft=n_fft, hop_length=hop_length,
                      win_length=win_length, n_mels=n_mels, fmin=fmin, fmax=fmax,
                      window=window, pre_emphasis=pre_emphasis, top_db=top_db)
        return _log_mel_to_mfcc(S, n_mfcc, preset, lifter, append_energy)
    if signal is None:
        raise ValueError("mfcc: pass a signal and its sample_rate, or S (a log-power mel "
                         "spectrogram)")
    options = mfcc_options(sample_rate, n_mfcc, preset, n_fft=n_fft, hop_length=hop_length,
                           win_length=win_length, n_mels=n_mels, fmin=fmin, fmax=fmax,
                           window=window, pre_emphasis=pre_emphasis, lifter=lifter,
                           top_db=top_db, append_energy=append_energy)
    return mfcc_from_options(signal, options)


def _log_mel_to_mfcc(S: Array, n_mfcc: int, preset: str, lifter_length: float | None,
                     append_energy: bool | None) -> Array:
    """dct -> lifter with the preset's settings: the part of mfcc that S enters."""
    if preset not in PRESETS:
        raise ValueError(f"mfcc: preset must be one of {PRESETS}, got {preset!r}")
    defaults = CEPSTRAL_DEFAULTS[preset]
    S = _as_spectrogram(S, "mfcc", "n_mels")
    if defaults["append_energy"] if append_energy is None else append_energy:
        raise ValueError(f"mfcc: preset {preset!r} puts ln(frame energy) in C0, and S no "
                         f"longer holds the power spectrum it comes from; pass "
                         f"append_energy=False to keep the DCT's C0, or start from the signal")
    if not 1 <= n_mfcc <= S.shape[-1]:
        raise ValueError(f"mfcc: n_mfcc={n_mfcc} must be between 1 and the {S.shape[-1]} mel "
                         f"bands of S")
    length = defaults["lifter"] if lifter_length is None else float(lifter_length)
    if length < 0:
        raise ValueError(f"mfcc: lifter must be >= 0 (0 disables it), got {length}")
    return lifter(dct(S, n_mfcc), length, defaults["lifter_first_index"])


def melspectrogram(signal: Array | None = None, sample_rate: int | None = None,
                   preset: str = "librosa", *, S: Array | None = None,
                   n_fft: int | None = None, hop_length: int | None = None,
                   win_length: int | None = None, n_mels: int | None = None,
                   fmin: float | None = None, fmax: float | None = None,
                   window: str | None = None, pre_emphasis: float | None = None) -> Array:
    """Mel band energies, time-major: mfcc's chain up to the filterbank, before the log.

    From a signal this runs pre_emphasis -> ... -> power_spectrum -> mel_filterbank with the
    preset's settings; from ``S``, a power spectrogram, only the filterbank, as
    librosa.feature.melspectrogram(S=...) does. ``log_mel`` of the result (the preset's
    kind, and top_db for "librosa") is what ``mfcc(S=...)`` takes.

    Args:
        signal: (samples,) or (batch, samples), as for mfcc.
        sample_rate: Hz, of the signal or of the audio S was computed from; always required.
        preset: "librosa" (Slaney mels with area norm, |STFT|²) or "htk" (bin-rounded HTK mels,
            no norm, |FFT|² / n_fft), see mfcc.
        S: instead of a signal, a power spectrogram, time-major (frames, 1 + n_fft // 2) or
            (batch, frames, 1 + n_fft // 2), float: what power_spectrum returns (with
            normalize=True for "htk", as its chain does). Then hop_length, win_length, window
            and pre_emphasis are refused (S is past framing), and n_fft, when None, is
            2 · (bins - 1), librosa's rule.
        n_fft, hop_length, win_length, n_mels, fmin, fmax, window, pre_emphasis: as for mfcc.
    Returns:
        (frames, n_mels) or (batch, frames, n_mels) band energies >= 0, same module; float
        dtype of the signal (or of S).
    Raises:
        ValueError: naming the option, or the shape of S, that is out of range.
    """
    if S is not None:
        if signal is not None:
            raise ValueError("melspectrogram: pass a signal or S (a power spectrogram), "
                             "not both")
        _refuse_spent("melspectrogram", "the framing", hop_length=hop_length,
                      win_length=win_length, window=window, pre_emphasis=pre_emphasis)
        S = _as_spectrogram(S, "melspectrogram", "1 + n_fft // 2")
        bins = S.shape[-1]
        if n_fft is None:
            n_fft = 2 * (bins - 1)
        elif n_fft // 2 + 1 != bins:
            raise ValueError(f"melspectrogram: S has {bins} frequency bins, but n_fft={n_fft} "
                             f"gives {n_fft // 2 + 1}; leave n_fft out to take "
                             f"2 · (bins - 1) = {2 * (bins - 1)}")
        # S is past framing: the frame settings get values that pass mfcc_options' checks
        # and change nothing here; n_mfcc=1 likewise, the DCT is not reached.
        options = mfcc_options(sample_rate, 1, preset, n_fft=n_fft, hop_length=n_fft,
                               win_length=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        return _power_to_mel(S, options)
    if signal is None:
        raise ValueError("melspectrogram: pass a signal and its sample_rate, or S (a power "
                         "spectrogram)")
    options = mfcc_options(sample_rate, 1, preset, n_fft=n_fft, hop_length=hop_length,
                           win_length=win_length, n_mels=n_mels, fmin=fmin, fmax=fmax,
                           window=window, pre_emphasis=pre_emphasis)
    frames = _signal_to_frames(_as_float_signal(signal, "melspectrogram"), options)
    return _power_to_mel(_frames_to_power(frames, options), options)


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
            # FFTs; blocks of a few hundred KB stay in the heap and in cache (benchmarks/
            # mfcc.py, the batched runs). Each block is still one array program; the loop
            # runs over blocks, not utterances.
            out = np.empty((signal.shape[0], frames, options.n_mfcc), dtype=signal.dtype)
            for start in range(0, signal.shape[0], block):
                out[start:start + block] = _mfcc_chain(signal[start:start + block], options)
            return out
    return _mfcc_chain(signal, options)


def power_frames(signal: Array, options: MFCCOptions) -> Array:
    """The chain up to the power spectrum: (..., samples) -> (..., frames, 1 + n_fft // 2).

    Where augmentation enters between stages (a warped filterbank, masks on the log mels),
    start here and go on with mel_filterbank, log_mel and ``mfcc(S=...)``.
    """
    return _frames_to_power(_signal_to_frames(_as_float_signal(signal, "power_frames"), options),
                            options)


def _signal_to_frames(signal: Array, options: MFCCOptions) -> Array:
    o = options
    emphasised = pre_emphasis(signal, o.pre_emphasis)
    padded = pad_signal(emphasised, o.frame_length, o.hop_length, o.padding)
    return frame_signal(padded, o.frame_length, o.hop_length)


def _mfcc_chain(signal: Array, options: MFCCOptions) -> Array:
    return frames_to_mfcc(_signal_to_frames(signal, options), options)


def log_mel_frames(signal: Array, options: MFCCOptions) -> Array:
    """The chain up to the log mels: (..., samples) -> (..., frames, options.n_mels).

    pre_emphasis -> pad_signal -> frame_signal -> apply_window -> power_spectrum ->
    mel_filterbank -> log_mel with the resolved options: exactly what mfcc_from_options hands
    its DCT (``mfcc(S=log_mel_frames(signal, o), append_energy=False)`` is its output with the
    DCT's C0), and the same frames. options.n_mfcc, lifter and append_energy play no part.
    """
    return frames_to_log_mel(_signal_to_frames(_as_float_signal(signal, "log_mel_frames"), options),
                             options)


def _frames_to_power(frames: Array, options: MFCCOptions) -> Array:
    o = options
    windowed = apply_window(frames, o.window, o.win_length)
    return power_spectrum(windowed, o.n_fft, normalize=o.normalize_power)


def _power_to_mel(power: Array, options: MFCCOptions) -> Array:
    o = options
    weights = mel_filterbank(o.sample_rate, o.n_fft, o.n_mels, o.fmin, o.fmax, o.mel_scale,
                             o.mel_norm, o.bin_rounded, dtype=power.dtype,
                             xp=array_module(power))
    return matmul_last(power, weights.T)


def _power_to_log_mel(power: Array, options: MFCCOptions) -> Array:
    return log_mel(_power_to_mel(power, options), options.log, top_db=options.top_db)


def frames_to_log_mel(frames: Array, options: MFCCOptions) -> Array:
    """The chain from cut frames (..., frames, frame_length) to the log mels (..., frames, n_mels)
    (what StreamingMFCC runs for kind "logmel")."""
    return _power_to_log_mel(_frames_to_power(frames, options), options)


def frames_to_mfcc(frames: Array, options: MFCCOptions) -> Array:
    """The chain from cut frames (..., frames, frame_length) to (..., frames, n_mfcc)."""
    o = options
    xp = array_module(frames)
    power = _frames_to_power(frames, o)
    logs = _power_to_log_mel(power, o)
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


__all__ = ["CPU_BLOCK_BYTES", "frames_to_log_mel", "frames_to_mfcc", "log_mel_frames", "melspectrogram",
           "mfcc", "mfcc_from_options", "num_frames", "power_frames"]
