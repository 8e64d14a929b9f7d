"""audio.features.spectrum: the power spectrum of each frame."""

from __future__ import annotations

import numpy as np

from audio import features as F


def test_power_spectrum_parseval_and_normalisation():
    frames = np.random.default_rng(0).normal(size=(3, 64))
    power = F.power_spectrum(frames, 64)
    assert power.shape == (3, 33)
    # Parseval on the full spectrum: Σ|X|² = N Σx²; the half spectrum counts middle bins twice
    full = power[:, 0] + power[:, -1] + 2 * power[:, 1:-1].sum(axis=1)
    np.testing.assert_allclose(full, 64 * (frames ** 2).sum(axis=1))
    np.testing.assert_allclose(F.power_spectrum(frames, 64, normalize=True), power / 64)
    assert F.power_spectrum(frames.astype(np.float32), 128).dtype == np.float32


def test_power_spectrum_zero_pads_and_truncates_like_rfft():
    frames = np.random.default_rng(1).normal(size=(2, 100))
    np.testing.assert_allclose(F.power_spectrum(frames, 256),
                               np.abs(np.fft.rfft(frames, 256)) ** 2, rtol=1e-10)
    np.testing.assert_allclose(F.power_spectrum(frames, 64),
                               np.abs(np.fft.rfft(frames, 64)) ** 2, rtol=1e-10)
