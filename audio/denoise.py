"""Spectral subtraction (Boll, 1979): remove stationary noise estimated from the quietest frames.

    noisy power |Y|² per frame and bin      (STFT, Hann window, 75 % overlap)
    noise power N = mean of |Y|² over the noise_frames quietest frames (assumed speech-free)
    clean power S = max(|Y|² - over_subtraction · N, floor · N)
    clean signal  = inverse FFT of sqrt(S) with the noisy phase, overlap-added

Over-subtraction (> 1) removes more of the noise's random peaks; the floor keeps a little noise
everywhere, which hides the "musical noise" of isolated surviving peaks (Berouti et al., 1979).
"""

from __future__ import annotations

import numpy as np

from audio.backend import Array, array_module
from audio.features import frame_signal, overlap_add, window


def spectral_subtraction(signal: Array, sample_rate: int, noise_frames: int = 8,
                         over_subtraction: float = 2.0, floor: float = 0.02,
                         n_fft: int | None = None) -> Array:
    """Denoise by subtracting the noise spectrum estimated from the first frames.

    Args:
        signal: (samples,) or (batch, samples), float; numpy or cupy.
        sample_rate: Hz, used for the default frame size.
        noise_frames: how many of the quietest frames (hop n_fft / 4) are averaged into the
            noise spectrum. Boll used the leading frames; the quietest ones also work when
            speech starts at once, as in many FSDD takes. 8 frames of 32 ms at an 8 ms hop
            span 88 ms of pauses.
        over_subtraction: α, multiples of the noise power removed (1 to 4 are usual).
        floor: β, the cleaned power never drops below β · noise power.
        n_fft: frame length in samples, a multiple of 4; None picks the power of two
            nearest 32 ms (256 at 8 kHz, 512 at 16 kHz).
    Returns:
        Same shape, module and dtype as signal.
    """
    xp = array_module(signal)
    if signal.ndim not in (1, 2) or signal.shape[-1] == 0:
        raise ValueError(f"spectral_subtraction: signal must be (samples,) or (batch, samples) "
                         f"with samples, got shape {tuple(signal.shape)}")
    if n_fft is None:
        n_fft = int(2 ** round(np.log2(0.032 * sample_rate)))
    if n_fft % 4:
        raise ValueError(f"spectral_subtraction: n_fft must be a multiple of 4, got {n_fft}")
    if noise_frames < 1 or over_subtraction < 0 or floor < 0:
        raise ValueError(f"spectral_subtraction: need noise_frames >= 1, over_subtraction >= 0 "
                         f"and floor >= 0, got {noise_frames}, {over_subtraction}, {floor}")
    hop = n_fft // 4
    samples = signal.shape[-1]
    # pad a frame of zeros on each side, and the end up to a whole hop, so every sample is
    # covered by four frames and the window sum below is flat
    tail = n_fft + (-samples) % hop
    padded = xp.concatenate([xp.zeros(signal.shape[:-1] + (n_fft,), signal.dtype), signal,
                             xp.zeros(signal.shape[:-1] + (tail,), signal.dtype)], axis=-1)
    w = window("hann", n_fft, dtype=signal.dtype, xp=xp)
    frames = frame_signal(padded, n_fft, hop) * w
    spectrum = xp.fft.rfft(frames, axis=-1)
    power = spectrum.real ** 2 + spectrum.imag ** 2
    # Noise estimate: the mean spectrum of the quietest frames that lie wholly inside the
    # signal (the edge frames overlap the zero padding and would look quieter than the noise)
    inside = power[..., n_fft // hop:(n_fft + samples - n_fft) // hop + n_fft // hop + 1, :]
    if inside.shape[-2] < noise_frames:
        raise ValueError(f"spectral_subtraction: {samples} samples give "
                         f"{max(inside.shape[-2], 0)} frames, fewer than "
                         f"noise_frames={noise_frames} to estimate the noise from")
    quietest = xp.argsort(inside.sum(axis=-1), axis=-1)[..., :noise_frames]
    noise = xp.take_along_axis(inside, quietest[..., None], axis=-2).mean(axis=-2, keepdims=True)
    clean = xp.maximum(power - over_subtraction * noise, floor * noise)
    gain = xp.sqrt(clean / xp.maximum(power, np.finfo(power.dtype).tiny))
    frames_out = xp.fft.irfft(spectrum * gain, n=n_fft, axis=-1).astype(signal.dtype) * w
    # Hann analysis and synthesis at 75 % overlap: the squared windows sum to 1.5
    summed = overlap_add(frames_out, hop) / signal.dtype.type(1.5)
    return summed[..., n_fft:n_fft + samples]
