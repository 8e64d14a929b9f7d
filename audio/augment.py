"""Data augmentation: noise at a chosen SNR (white, pink, brown), gain, reverberation, band-limiting, time shift, speed
perturbation, pitch shift, SpecAugment masks.

Every function takes ``rng``, a numpy.random.Generator (None makes a fresh, unseeded one), so
a seeded generator reproduces the same augmentation. Signals are (samples,) or
(batch, samples) in numpy or cupy; with a batch, each utterance draws its own random values in
one array program. Random numbers are drawn on the CPU by ``rng`` and moved to the signal's
module, so the same seed gives the same result on either.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from math import gcd

import numpy as np
from scipy.signal import butter, fftconvolve, firwin, resample_poly, sosfilt

from audio.backend import Array, array_module, to_host
from audio.features import frame_signal, overlap_add, window


def _generator(rng: np.random.Generator | None) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng()
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator or None, got {type(rng).__name__}"
                        f"; make one with numpy.random.default_rng(seed)")
    return rng


def add_noise(signal: Array, snr_db: float, noise: Array | None = None,
              rng: np.random.Generator | None = None, *, exact: bool = True) -> Array:
    """Add noise scaled so that 10 · log10(Σ signal² / Σ noise²) = snr_db, per utterance.

    Args:
        signal: (samples,) or (batch, samples), float.
        snr_db: signal-to-noise ratio in dB (e.g. 20 is mild, 0 is as loud as the speech).
        noise: (noise_samples,) to mix in, e.g. a babble recording: a random excerpt of it is
            used (tiled if shorter than the signal). None draws white Gaussian noise.
        rng: numpy.random.Generator.
        exact: True scales each utterance's noise to give exactly snr_db. False sets the
            noise's expected level instead: white noise of standard deviation
            σ = sqrt(mean(signal²) / 10^(snr_db / 10)), whose own power, and so the SNR of
            one draw, scatters around snr_db (one standard deviation is
            10 · log10(1 + sqrt(2 / samples)) dB: 0.07 dB for a second at 8 kHz). The sum is
            taken in float64 and rounded once. White noise only (noise=None).
            audio.connected_digits adds its noise this way.
    Returns:
        signal + scaled noise, same shape, module and dtype. Not clipped, so with exact=True
        the SNR is exact.
    Raises:
        ValueError: the signal or the noise is silent (an SNR is undefined), or exact=False
            with a noise recording.
    """
    rng = _generator(rng)
    xp = array_module(signal)
    shape = signal.shape
    if not exact:
        if noise is not None:
            raise ValueError("add_noise: exact=False scales white noise by its known unit "
                             "variance; with a noise recording use exact=True")
        return _add_white_noise_at_level(signal, snr_db, xp.asarray(rng.standard_normal(shape)))
    if noise is None:
        drawn = rng.standard_normal(shape)
    else:
        source = np.asarray(to_host(noise), dtype=np.float64)
        if source.ndim != 1 or source.size == 0:
            raise ValueError(f"add_noise: noise must be (noise_samples,) with samples, "
                             f"got shape {source.shape}")
        samples = shape[-1]
        tiled = np.tile(source, -(-(samples + source.size) // source.size))
        starts = rng.integers(0, source.size, size=shape[:-1] + (1,))
        drawn = tiled[starts + np.arange(samples)]  # a random excerpt per utterance
    drawn = xp.asarray(drawn, dtype=signal.dtype)
    signal_power = (signal.astype(np.float64) ** 2).sum(axis=-1, keepdims=True)
    noise_power = (drawn.astype(np.float64) ** 2).sum(axis=-1, keepdims=True)
    if bool((signal_power == 0).any()) or bool((noise_power == 0).any()):
        raise ValueError("add_noise: the signal or the noise is all zeros, so no noise level "
                         "gives a defined SNR")
    scale = xp.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return signal + (scale * drawn).astype(signal.dtype)


#: noise colour -> the exponent β of its power spectrum, P(f) ∝ 1 / f^β
NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}


def coloured_noise(samples: int, colour: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """Gaussian noise of a colour, shaped in the frequency domain, with unit RMS.

    White noise's spectrum is multiplied by f^(-β/2), so its power falls as 1/f^β: white
    (β = 0) is flat, pink (1/f, -3 dB per octave) is the spectrum of much natural and
    machine noise, brown (1/f², -6 dB per octave) a rumble. The DC bin is zeroed.
    For add_noise's ``noise`` argument.

    Args:
        samples: length, >= 2.
        colour: a key of NOISE_COLOURS.
        rng: numpy.random.Generator.
    Returns:
        (samples,) float64, zero mean, RMS 1.
    """
    rng = _generator(rng)
    if colour not in NOISE_COLOURS:
        raise ValueError(f"coloured_noise: colour must be one of {sorted(NOISE_COLOURS)}, got {colour!r}")
    if samples < 2:
        raise ValueError(f"coloured_noise: samples must be >= 2, got {samples}")
    frequencies = np.fft.rfftfreq(samples)
    shape = np.zeros_like(frequencies)
    shape[1:] = frequencies[1:] ** (-NOISE_COLOURS[colour] / 2)
    noise = np.fft.irfft(np.fft.rfft(rng.standard_normal(samples)) * shape, n=samples)
    return noise / np.sqrt((noise ** 2).mean())


def _add_white_noise_at_level(signal: Array, snr_db: float, drawn: Array) -> Array:
    """signal + σ · drawn (drawn float64, unit variance) with σ from the signal's mean power."""
    xp = array_module(signal)
    power = (signal.astype(np.float64) ** 2).sum(axis=-1, keepdims=True) / signal.shape[-1]
    if bool((power == 0).any()):
        raise ValueError("add_noise: the signal is all zeros, so no noise level gives a "
                         "defined SNR")
    sigma = xp.sqrt(power / 10.0 ** (snr_db / 10.0))
    return (signal + sigma * drawn).astype(signal.dtype)


def gain(signal: Array, gain_db: float) -> Array:
    """Scale the signal by gain_db decibels: signal · 10^(gain_db / 20) (a louder or quieter
    take, or a microphone's sensitivity).

    Args:
        signal: (samples,) or (batch, samples), float.
        gain_db: the change of level in dB (6 is about twice the amplitude).
    Returns:
        Same shape, module and dtype; its RMS is 10^(gain_db / 20) times the input's.
    """
    if not np.isfinite(gain_db):
        raise ValueError(f"gain: gain_db must be a finite number of dB, got {gain_db}")
    return signal * signal.dtype.type(10.0 ** (gain_db / 20.0))


def room_impulse_response(rt60: float, sample_rate: int, rng: np.random.Generator | None = None,
                          direct_to_reverberant_db: float = 0.0) -> np.ndarray:
    """A synthetic room's impulse response: a direct path, then a diffuse exponential tail.

    h[0] = 1 (the direct sound); h[n] for n >= 1 is Gaussian noise under the envelope
    10^(-3 n / (rt60 · sample_rate)), whose energy falls 60 dB in rt60 seconds (Sabine's
    reverberation time; the statistical model of Schroeder, 1962), over rt60 seconds, scaled so
    that the direct path's energy over the tail's is direct_to_reverberant_db.

    Args:
        rt60: reverberation time in seconds, > 0 (0.2 is a small furnished room, 0.6 a classroom).
        sample_rate: Hz.
        rng: numpy.random.Generator.
        direct_to_reverberant_db: energy of the direct path over the tail's, dB.
    Returns:
        (max(2, round(rt60 · sample_rate)),) float64.
    """
    rng = _generator(rng)
    if not (np.isfinite(rt60) and rt60 > 0):
        raise ValueError(f"room_impulse_response: rt60 must be > 0 seconds, got {rt60}")
    length = max(2, round(rt60 * sample_rate))
    tail = rng.standard_normal(length - 1) * 10.0 ** (-3.0 * np.arange(1, length) / (rt60 * sample_rate))
    tail *= np.sqrt(10.0 ** (-direct_to_reverberant_db / 10.0) / (tail ** 2).sum())
    return np.concatenate([[1.0], tail])


def reverberate(signal: Array, rt60: float, sample_rate: int, rng: np.random.Generator | None = None,
                direct_to_reverberant_db: float = 0.0) -> Array:
    """The signal as heard in a room: convolved with room_impulse_response (scipy's
    fftconvolve), cut to the input's length and scaled back to the input's RMS.

    Args:
        signal: (samples,) or (batch, samples), float; a batch shares one room.
        rt60, sample_rate, rng, direct_to_reverberant_db: see room_impulse_response.
    Returns:
        Same shape, module and dtype, same RMS per utterance (an all-zero one stays zero).
    """
    response = room_impulse_response(rt60, sample_rate, rng, direct_to_reverberant_db)
    xp = array_module(signal)
    host = np.asarray(to_host(signal), dtype=np.float64)
    wet = fftconvolve(host, response.reshape((1,) * (host.ndim - 1) + (-1,)), axes=-1)[..., :host.shape[-1]]
    before = np.sqrt((host ** 2).mean(axis=-1, keepdims=True))
    after = np.sqrt((wet ** 2).mean(axis=-1, keepdims=True))
    wet *= np.divide(before, after, out=np.zeros_like(after), where=after > 0)
    return xp.asarray(wet.astype(signal.dtype))


def band_limit(signal: Array, low_hz: float, high_hz: float, sample_rate: int, order: int = 4) -> Array:
    """The signal through a channel that passes only low_hz-high_hz: a Butterworth band-pass of
    the given order (scipy's butter as second-order sections, run forwards by sosfilt, so it
    is causal like a real microphone or telephone line). 300-3400 Hz is the telephone band; a
    cheap microphone rolls off the lows and the highs more gently (a smaller order).

    Args:
        signal: (samples,) or (batch, samples), float.
        low_hz: lower edge (-3 dB), 0 < low_hz < high_hz.
        high_hz: upper edge (-3 dB), below the Nyquist frequency sample_rate / 2.
        sample_rate: Hz.
        order: the filter's order per edge, 1-8 (its skirts fall 6·order dB per octave).
    Returns:
        Same shape, module and dtype; the level is the channel's (not rescaled).
    """
    nyquist = sample_rate / 2
    if not (np.isfinite(low_hz) and np.isfinite(high_hz) and 0 < low_hz < high_hz < nyquist):
        raise ValueError(f"band_limit: need 0 < low_hz < high_hz < {nyquist:g} Hz (the Nyquist frequency "
                         f"of {sample_rate} Hz), got low_hz={low_hz}, high_hz={high_hz}")
    if isinstance(order, bool) or not isinstance(order, int) or not 1 <= order <= 8:
        raise ValueError(f"band_limit: order must be an integer in 1-8, got {order!r}")
    sections = butter(order, [low_hz, high_hz], btype="bandpass", fs=sample_rate, output="sos")
    xp = array_module(signal)
    passed = sosfilt(sections, np.asarray(to_host(signal), dtype=np.float64), axis=-1)
    return xp.asarray(passed.astype(signal.dtype))


def time_shift(signal: Array, max_shift: int, rng: np.random.Generator | None = None,
               roll: bool = False) -> Array:
    """Delay or advance each utterance by a random whole number of samples.

    Args:
        signal: (samples,) or (batch, samples).
        max_shift: shifts are uniform in [-max_shift, max_shift] samples (800 is 0.1 s at 8 kHz).
        rng: numpy.random.Generator.
        roll: wrap samples around the ends instead of filling with zeros.
    Returns:
        Same shape, module and dtype; positive shifts move the sound later.
    """
    rng = _generator(rng)
    if max_shift < 0:
        raise ValueError(f"time_shift: max_shift must be >= 0 samples, got {max_shift}")
    xp = array_module(signal)
    samples = signal.shape[-1]
    shifts = rng.integers(-max_shift, max_shift + 1, size=signal.shape[:-1] + (1,))
    source = np.arange(samples) - shifts  # output sample n comes from input n - shift
    if roll:
        return xp.take_along_axis(signal, xp.asarray(source % samples), axis=-1)
    inside = (source >= 0) & (source < samples)
    taken = xp.take_along_axis(signal, xp.asarray(np.clip(source, 0, samples - 1)), axis=-1)
    return xp.where(xp.asarray(inside), taken, signal.dtype.type(0))


@lru_cache(maxsize=128)
def _lowpass(up: int, down: int) -> np.ndarray:
    """The anti-aliasing filter resample_poly designs for up/down (Kaiser window, beta 5),
    designed once: a design costs more than filtering a one-second FSDD take."""
    divisor = gcd(up, down)
    rate = max(up, down) // divisor
    return firwin(2 * 10 * rate + 1, 1.0 / rate, window=("kaiser", 5.0))


def _resample(signal: Array, up: int, down: int) -> Array:
    xp = array_module(signal)
    if xp is np:
        lowpass = _lowpass(up, down).astype(signal.dtype)  # the dtype resample_poly would filter in
        return resample_poly(signal, up, down, axis=-1, window=lowpass).astype(signal.dtype, copy=False)
    # cupy: its scipy twin runs on the GPU; imported here, as cupyx exists only with cupy
    from cupyx.scipy.signal import resample_poly as resample_poly_gpu
    return resample_poly_gpu(signal, up, down, axis=-1).astype(signal.dtype, copy=False)


def speed_perturb(signal: Array, factor: float | None = None,
                  rng: np.random.Generator | None = None,
                  factors: tuple[float, ...] = (0.9, 1.0, 1.1)) -> Array:
    """Play the signal ``factor`` times faster by resampling: duration and pitch both change.

    As Kaldi's speed perturbation (Ko et al., 2015): samples are resampled by 1/factor with
    scipy.signal.resample_poly and then read at the original rate.

    Args:
        signal: (samples,) or (batch, samples); a batch shares one factor.
        factor: > 0; 1.1 is 10 % faster (fewer samples). None draws one from ``factors``.
        rng: numpy.random.Generator, used when factor is None.
        factors: the choices for a random factor.
    Returns:
        (..., about samples / factor), same module and dtype.
    """
    if factor is None:
        factor = float(_generator(rng).choice(factors))
    if not factor > 0:
        raise ValueError(f"speed_perturb: factor must be > 0, got {factor}")
    if factor == 1:
        return signal
    ratio = Fraction(1 / factor).limit_denominator(1000)
    return _resample(signal, ratio.numerator, ratio.denominator)


def time_stretch(signal: Array, rate: float, n_fft: int = 256) -> Array:
    """Change duration without changing pitch: the phase vocoder (Flanagan & Golden, 1966).

    STFT with a Hann window and hop n_fft / 4; output frame k reads the analysis spectrum at
    the fractional frame k · rate, magnitudes interpolated between the two nearest frames, and
    its phase is the previous output phase plus the measured phase advance between those
    frames (wrapped around the bin's expected advance 2π · bin · hop / n_fft), so every
    sinusoid keeps its frequency; the frames are overlap-added at the same hop. This is what
    librosa.effects.time_stretch does. Transients smear a little ("phasiness").

    Args:
        signal: (samples,) or (batch, samples).
        rate: > 0; 2 makes it twice as fast (half as long), 0.5 twice as long.
        n_fft: frame length in samples, a multiple of 4 (256 is 32 ms at 8 kHz).
    Returns:
        (..., round(samples / rate)), same module and dtype.
    """
    if not rate > 0:
        raise ValueError(f"time_stretch: rate must be > 0, got {rate}")
    xp = array_module(signal)
    hop = n_fft // 4
    samples = signal.shape[-1]
    target = max(1, round(samples / rate))
    # Pad one hop in front, not a whole frame: the first frame must hold signal, because its
    # phases seed every later frame's (an all-zero first frame gives meaningless phases and
    # neighbouring bins of one sinusoid then cancel). A frame of zeros at the end.
    padded = xp.concatenate([xp.zeros(signal.shape[:-1] + (hop,), dtype=signal.dtype), signal,
                             xp.zeros(signal.shape[:-1] + (n_fft,), dtype=signal.dtype)],
                            axis=-1)
    w = window("hann", n_fft, dtype=signal.dtype, xp=xp)
    spectrum = xp.fft.rfft(frame_signal(padded, n_fft, hop) * w, axis=-1)
    count = spectrum.shape[-2]
    steps = np.arange(0, count - 1, rate)  # fractional analysis frame of each output frame
    left = xp.asarray(np.floor(steps).astype(np.int64))
    fraction = xp.asarray((steps - np.floor(steps))[:, None], dtype=signal.dtype)
    before, after = spectrum[..., left, :], spectrum[..., left + 1, :]
    magnitude = (1 - fraction) * xp.abs(before) + fraction * xp.abs(after)
    expected = xp.asarray(2 * np.pi * hop * np.arange(spectrum.shape[-1]) / n_fft)
    advance = xp.angle(after) - xp.angle(before) - expected
    advance = advance - 2 * np.pi * xp.round(advance / (2 * np.pi)) + expected  # unwrapped
    # output frame k's phase: the first frame's phase plus the advances of frames 0..k-1
    phase = xp.angle(spectrum[..., :1, :]) + xp.cumsum(advance, axis=-2) - advance
    frames = xp.fft.irfft(magnitude * xp.exp(1j * phase), n=n_fft, axis=-1)
    summed = overlap_add(frames.astype(signal.dtype) * w, hop)
    # divide by the sum of the squared windows (1.5 inside, less at the edges), floored where
    # only a window's tail reaches
    envelope = overlap_add(xp.broadcast_to(w * w, frames.shape[-2:]), hop)
    summed = summed / xp.maximum(envelope, signal.dtype.type(0.1))
    start = hop  # the leading zeros (output frames are laid down at the analysis hop)
    out = summed[..., start:start + target]
    if out.shape[-1] < target:
        tail = xp.zeros(signal.shape[:-1] + (target - out.shape[-1],), dtype=signal.dtype)
        out = xp.concatenate([out, tail], axis=-1)
    return out


def pitch_shift(signal: Array, semitones: float | None = None,
                rng: np.random.Generator | None = None, max_semitones: float = 2.0,
                n_fft: int = 256) -> Array:
    """Raise or lower the pitch, keeping the duration: time_stretch, then resample.

    The simple method: stretch the signal to r times its length with the phase vocoder
    (time_stretch, pitch unchanged), then play it r times faster by resampling
    (speed_perturb), which restores the length and multiplies every frequency by
    r = 2^(semitones / 12).

    Args:
        signal: (samples,) or (batch, samples); a batch shares one shift.
        semitones: shift, positive is higher. None draws one uniformly in
            [-max_semitones, max_semitones] with rng.
        rng: numpy.random.Generator, used when semitones is None.
        n_fft: phase vocoder frame, see time_stretch.
    Returns:
        Same shape, module and dtype.
    """
    if semitones is None:
        semitones = float(_generator(rng).uniform(-max_semitones, max_semitones))
    if semitones == 0:
        return signal
    ratio = 2.0 ** (semitones / 12.0)
    samples = signal.shape[-1]
    stretched = time_stretch(signal, 1.0 / ratio, n_fft)
    shifted = speed_perturb(stretched, ratio)
    xp = array_module(signal)
    if shifted.shape[-1] >= samples:
        return shifted[..., :samples]
    pad = xp.zeros(signal.shape[:-1] + (samples - shifted.shape[-1],), dtype=signal.dtype)
    return xp.concatenate([shifted, pad], axis=-1)


def spec_augment(features: Array, rng: np.random.Generator | None = None,
                 num_time_masks: int = 2, max_time_width: int = 10,
                 num_freq_masks: int = 2, max_freq_width: int = 4,
                 value: float | None = 0.0) -> Array:
    """SpecAugment's masks (Park et al., 2019): blank random bands of frames and of bins.

    Each mask has a width uniform in [0, max width] and a uniform start; every utterance of a
    batch draws its own masks. Time warping, the paper's third part, is left out.

    Args:
        features: (frames, bins) or (batch, frames, bins), e.g. log-mels or MFCCs.
        rng: numpy.random.Generator.
        num_time_masks, max_time_width: masks over frames and their widest extent, frames.
        num_freq_masks, max_freq_width: masks over bins and their widest extent, bins.
        value: what masked cells become; None uses each utterance's mean.
    Returns:
        A masked copy, same shape, module and dtype.
    """
    rng = _generator(rng)
    xp = array_module(features)
    if features.ndim not in (2, 3):
        raise ValueError(f"spec_augment: features must be (frames, bins) or (batch, frames, "
                         f"bins), got shape {tuple(features.shape)}")
    lead = features.shape[:-2]
    masked = np.zeros(features.shape, dtype=bool)
    for axis, count, widest in ((-2, num_time_masks, max_time_width),
                                (-1, num_freq_masks, max_freq_width)):
        length = features.shape[axis]
        widths = rng.integers(0, min(widest, length) + 1, size=lead + (count, 1))
        starts = rng.integers(0, length - widths + 1)
        positions = np.arange(length)
        hit = ((positions >= starts) & (positions < starts + widths)).any(axis=-2)
        masked |= hit[..., :, None] if axis == -2 else hit[..., None, :]
    fill = (features.mean(axis=(-2, -1), keepdims=True) if value is None
            else features.dtype.type(value))
    return xp.where(xp.asarray(masked), fill, features)
