"""audio.denoise.spectral_subtraction: the SNR improves on speech with added white noise."""

from __future__ import annotations

import numpy as np
import pytest

from audio import augment, load
from audio.denoise import spectral_subtraction
from tests.audio._helpers import fsdd_recordings
from tests.reference.make_audio_fixtures import synthetic_speech


def _snr_db(clean: np.ndarray, other: np.ndarray) -> float:
    clean = clean.astype(np.float64)
    return float(10 * np.log10((clean ** 2).sum() / ((other - clean) ** 2).sum()))


def _speech_with_leading_silence(rate: int = 8000) -> np.ndarray:
    speech = synthetic_speech(rate, rate, seed=0)
    return np.concatenate([np.zeros(rate // 5, np.float32), speech])


@pytest.mark.parametrize("snr", [0.0, 5.0, 10.0])
def test_snr_improves_on_synthetic_speech(snr):
    clean = _speech_with_leading_silence()
    noisy = augment.add_noise(clean, snr, rng=np.random.default_rng(0))
    cleaned = spectral_subtraction(noisy, 8000)
    assert cleaned.shape == clean.shape and cleaned.dtype == np.float32
    assert _snr_db(clean, cleaned) > _snr_db(clean, noisy) + 3.0


def test_batch_equals_each_and_silence_in_gives_silence_out():
    clean = _speech_with_leading_silence()
    noisy = np.stack([augment.add_noise(clean, s, rng=np.random.default_rng(s)) for s in (0, 10)])
    batch = spectral_subtraction(noisy, 8000)
    np.testing.assert_allclose(batch[1], spectral_subtraction(noisy[1], 8000), atol=1e-6)
    np.testing.assert_array_equal(spectral_subtraction(np.zeros(4000, np.float32), 8000), 0)


def test_clean_input_passes_nearly_unchanged():
    clean = _speech_with_leading_silence()
    noisy = clean + 1e-4 * np.random.default_rng(0).normal(size=clean.shape).astype(np.float32)
    assert _snr_db(clean, spectral_subtraction(noisy, 8000)) > 25.0


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="fewer than noise_frames=8 to estimate"):
        spectral_subtraction(np.ones(100, np.float32), 8000)
    with pytest.raises(ValueError, match="n_fft must be a multiple of 4, got 250"):
        spectral_subtraction(np.ones(1000, np.float32), 8000, n_fft=250)


def test_snr_improves_on_fsdd_recordings():
    folder = fsdd_recordings()
    for name in ("0_george_0.wav", "7_jackson_32.wav", "3_theo_10.wav"):
        clean, rate = load(folder / name)
        noisy = augment.add_noise(clean, 5.0, rng=np.random.default_rng(0))
        assert _snr_db(clean, spectral_subtraction(noisy, rate)) > _snr_db(clean, noisy), name
