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


# --- VTLP: the warp and the warped filterbank -------------------------------------------------

@pytest.mark.parametrize("alpha", [0.9, 0.95, 1.05, 1.1])
def test_vtlp_warp_is_piecewise_linear_and_keeps_the_band(alpha):
    rate, boundary = 8000, 3400.0
    f = np.linspace(0.0, 4000.0, 4001)
    warped = F.vtlp_warp(f, alpha, rate, boundary)
    assert warped[0] == 0.0 and warped[-1] == pytest.approx(4000.0)
    assert np.all(np.diff(warped) > 0)                      # monotonic: filters keep their order
    bend = boundary * min(alpha, 1.0) / alpha
    low = f <= bend
    np.testing.assert_allclose(warped[low], alpha * f[low])  # a plain scaling below the bend
    # above it a straight line through (bend, alpha * bend) and (N, N)
    slope = (4000.0 - alpha * bend) / (4000.0 - bend)
    np.testing.assert_allclose(warped[~low], alpha * bend + slope * (f[~low] - bend), atol=1e-9)


def test_vtlp_warp_identity_and_errors():
    f = np.array([0.0, 100.0, 3999.0])
    np.testing.assert_array_equal(F.vtlp_warp(f, 1.0, 8000), f)
    with pytest.raises(ValueError, match="alpha"):
        F.vtlp_warp(f, 0.0, 8000)
    with pytest.raises(ValueError, match="boundary_hz"):
        F.vtlp_warp(f, 1.1, 8000, boundary_hz=4000.0)


def test_vtlp_filterbank_moves_filters_by_alpha():
    plain = F.mel_filterbank(8000, 512, 26, scale="htk", norm=None)
    assert np.array_equal(F.mel_filterbank(8000, 512, 26, scale="htk", norm=None, vtlp_alpha=1.0),
                          plain)
    freqs = np.linspace(0, 4000, 257)
    peak = lambda w: freqs[np.argmax(w, axis=1)]  # noqa: E731
    for alpha in (0.9, 1.1):
        warped = F.mel_filterbank(8000, 512, 26, scale="htk", norm=None, vtlp_alpha=alpha)
        assert warped.shape == plain.shape
        assert np.all(warped.max(axis=1) > 0)              # no filter pushed out of the band
        low = peak(plain) < 2500                            # well below the bend
        # the filter peaks move by alpha, to within one FFT bin (15.6 Hz)
        np.testing.assert_allclose(peak(warped)[low], alpha * peak(plain)[low], atol=16.0)
    # the bin-rounded (HTK) bank warps too, and both warps differ from the plain bank
    htk = dict(scale="htk", norm=None, bin_rounded=True)
    assert not np.array_equal(F.mel_filterbank(8000, 512, 26, vtlp_alpha=1.1, **htk),
                              F.mel_filterbank(8000, 512, 26, **htk))


def test_power_frames_then_stages_equal_mfcc():
    signal = np.random.default_rng(0).normal(size=4000).astype(np.float32)
    options = F.mfcc_options(8000, 13, "htk")
    power = F.power_frames(signal, options)
    weights = F.mel_filterbank(8000, options.n_fft, options.n_mels, scale="htk", norm=None,
                               bin_rounded=True)
    cepstra = F.mfcc(S=F.log_mel(power @ weights.T, "natural"), n_mfcc=13, preset="htk",
                     append_energy=False)
    whole = F.mfcc(signal, 8000, 13, preset="htk")
    np.testing.assert_allclose(cepstra[:, 1:], whole[:, 1:], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(np.log(power.sum(-1)), whole[:, 0], rtol=1e-5)
