"""audio.features.mel: the mel scales, the filterbank (fixtures and live), the log."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from audio import features as F


@pytest.mark.parametrize("scale", ["slaney", "htk"])
def test_hz_mel_round_trip(scale):
    hz = np.array([0.0, 300.0, 999.0, 1000.0, 4000.0, 8000.0])
    np.testing.assert_allclose(F.mel_to_hz(F.hz_to_mel(hz, scale), scale), hz, atol=1e-9)


def test_mel_filterbank_against_fixtures(reference):
    for rate, n_fft, n_mels in ((8000, 512, 40), (16000, 2048, 128)):
        for scale in ("slaney", "htk"):
            expected = reference[f"mel/{scale}_{rate}_{n_fft}_{n_mels}"]
            got = F.mel_filterbank(rate, n_fft, n_mels, scale=scale)
            np.testing.assert_allclose(got, expected, atol=1e-6 * expected.max())
        expected = reference[f"mel/bins_{rate}_{n_fft}_26"]
        got = F.mel_filterbank(rate, n_fft, 26, scale="htk", norm=None, bin_rounded=True)
        np.testing.assert_allclose(got, expected, atol=1e-7)


@pytest.mark.parametrize("rate,n_fft,n_mels,fmin,fmax", [(8000, 256, 20, 0, None),
                                                         (22050, 2048, 128, 50, 8000),
                                                         (16000, 400, 64, 20, 7600)])
def test_mel_filterbank_live(rate, n_fft, n_mels, fmin, fmax):
    librosa = pytest.importorskip("librosa")
    psf = pytest.importorskip("python_speech_features")
    for htk in (False, True):
        for norm in ("slaney", None, 2.0):
            expected = librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                                           fmax=fmax, htk=htk, norm=norm)
            got = F.mel_filterbank(rate, n_fft, n_mels, fmin, fmax,
                                   scale="htk" if htk else "slaney", norm=norm)
            np.testing.assert_allclose(got, expected, atol=1e-6 * expected.max())
    expected = psf.get_filterbanks(n_mels, n_fft, rate, fmin, fmax)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bin rounding empties low filters; psf is silent
        got = F.mel_filterbank(rate, n_fft, n_mels, fmin, fmax, "htk", None, bin_rounded=True,
                               dtype=np.float64)
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_mel_filterbank_warns_on_empty_filters_and_checks_range():
    with pytest.warns(UserWarning, match="empty"):
        F.mel_filterbank(8000, 64, 60, fmin=10.0)
    with pytest.raises(ValueError, match=r"fmax <= sample_rate / 2 = 4000.0 Hz, .*fmax=5000"):
        F.mel_filterbank(8000, 256, 20, fmax=5000)
    with pytest.raises(ValueError, match="scale must be 'slaney' or 'htk', got 'bark'"):
        F.mel_filterbank(8000, 256, 20, scale="bark")


def test_log_mel_db_matches_power_to_db_and_clips_per_utterance():
    mel = np.array([[[1.0, 1e-3], [1e-12, 0.5]], [[1e-2, 1e-4], [1e-6, 1e-9]]])
    db = F.log_mel(mel, "db", top_db=40)
    np.testing.assert_allclose(db[0], [[0.0, -30.0], [-40.0, 10 * np.log10(0.5)]])
    np.testing.assert_allclose(db[1], [[-20.0, -40.0], [-60.0, -60.0]])  # its own loudest
    np.testing.assert_allclose(F.log_mel(mel, "db", top_db=None)[0, 1, 0], -100.0)  # amin
    assert np.array_equal(F.log_mel(mel, "db", top_db=math.inf), F.log_mel(mel, "db", None))
    np.testing.assert_allclose(F.log_mel(np.array([[0.0, math.e]]), "natural"),
                               [[math.log(F.EPS), 1.0]])
    with pytest.raises(ValueError, match="kind must be 'db' or 'natural', got 'log2'"):
        F.log_mel(mel, "log2")
