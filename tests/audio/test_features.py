"""audio.features: each stage on its own, then both presets against their libraries."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from audio import features as F
from tests.audio._helpers import assert_close_to_range, fixture_arrays, fsdd_subset

SIGNALS = ("speechlike_8k", "speechlike_16k", "short_8k")
OVERRIDES = {"n_fft": 256, "hop_length": 80, "n_mels": 40}  # as make_audio_fixtures.py


@pytest.fixture(scope="module")
def reference():
    return fixture_arrays()


# --- stages ---------------------------------------------------------------------------------

def test_pre_emphasis_formula_and_batch():
    x = np.array([[1.0, 2.0, 4.0], [0.0, -1.0, 1.0]], dtype=np.float32)
    y = F.pre_emphasis(x, 0.5)
    np.testing.assert_allclose(y, [[1.0, 1.5, 3.0], [0.0, -1.0, 1.5]])
    assert y.dtype == np.float32
    assert F.pre_emphasis(x, 0) is x


@pytest.mark.parametrize("samples", [1, 150, 200, 201, 280, 281, 1000])
def test_pad_end_gives_psf_frame_count(samples):
    padded = F.pad_signal(np.ones(samples, np.float32), 200, 80, mode="end")
    expected = 1 if samples <= 200 else 1 + math.ceil((samples - 200) / 80)
    assert F.frame_signal(padded, 200, 80).shape == (expected, 200)
    assert np.all(padded[samples:] == 0) and np.all(padded[:samples] == 1)


def test_pad_center_puts_half_a_frame_on_each_side():
    padded = F.pad_signal(np.arange(1, 11, dtype=np.float32)[None], 4, 2, mode="center")
    np.testing.assert_array_equal(padded, [[0, 0, *range(1, 11), 0, 0]])
    with pytest.raises(ValueError, match="mode must be 'center' or 'end', got 'both'"):
        F.pad_signal(np.ones(4), 2, 1, mode="both")


def test_frame_signal_shapes_and_values():
    x = np.arange(10.0)
    frames = F.frame_signal(x, 4, 3)
    np.testing.assert_array_equal(frames, [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]])
    batch = F.frame_signal(np.stack([x, -x]), 4, 3)
    assert batch.shape == (2, 3, 4)
    np.testing.assert_array_equal(batch[1], -frames)
    with pytest.raises(ValueError, match=r"got 3 samples, fewer than one frame \(frame_length=4\)"):
        F.frame_signal(np.zeros(3), 4, 1)


@pytest.mark.parametrize("name", ["hann", "hamming"])
def test_window_matches_scipy_periodic(name):
    from scipy.signal import get_window
    np.testing.assert_allclose(F.window(name, 400, dtype=np.float64),
                               get_window(name, 400, fftbins=True), atol=1e-12)


def test_window_rectangular_povey_and_centring():
    assert np.all(F.window("rectangular", 5) == 1)
    povey = F.window("povey", 5, dtype=np.float64)
    np.testing.assert_allclose(povey, np.hanning(5) ** 0.85, atol=1e-12)
    centred = F.window("hann", 4, n_fft=8)
    assert centred.shape == (8,) and np.all(centred[:2] == 0) and np.all(centred[6:] == 0)
    with pytest.raises(ValueError, match="name must be one of .* got 'kaiser'"):
        F.window("kaiser", 4)
    with pytest.raises(ValueError, match="read-only"):
        F.window("hann", 4)[0] = 1.0  # cached: nobody may change it


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


def test_dct_matches_scipy_ortho():
    from scipy.fft import dct as scipy_dct
    x = np.random.default_rng(2).normal(size=(2, 5, 26))
    np.testing.assert_allclose(F.dct(x, 13), scipy_dct(x, type=2, norm="ortho")[..., :13],
                               atol=1e-12)
    with pytest.raises(ValueError, match="n_out must be between 1 and the input size 26, got 30"):
        F.dct(x, 30)


def test_lifter_htk_and_librosa_numbering():
    c = np.ones((1, 4))
    n = np.arange(4)
    np.testing.assert_allclose(F.lifter(c, 22), [1 + 11 * np.sin(np.pi * n / 22)])
    np.testing.assert_allclose(F.lifter(c, 22, first_index=1),
                               [1 + 11 * np.sin(np.pi * (n + 1) / 22)])
    assert F.lifter(c, 0) is c


def test_deltas_match_psf_formula(reference):
    features = reference["speechlike_8k/htk"]
    assert_close_to_range(F.deltas(features, width=2), reference["speechlike_8k/htk_delta"])
    ramp = np.arange(10.0)[:, None] * np.ones((1, 3))
    d = F.deltas(ramp, width=2)
    np.testing.assert_allclose(d[2:-2], 1.0)  # slope of a ramp
    np.testing.assert_allclose(F.deltas(ramp, order=2)[4:-4], 0.0)  # its acceleration
    batch = np.stack([features, 2 * features])
    np.testing.assert_allclose(F.deltas(batch)[1], 2 * F.deltas(features), rtol=1e-5)


def test_cmvn_whole_and_sliding():
    x = np.random.default_rng(3).normal(3.0, 2.0, size=(2, 50, 4))
    y = F.cmvn(x)
    np.testing.assert_allclose(y.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(y.std(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(F.cmvn(x, variance=False).std(axis=1), x.std(axis=1))
    sliding = F.cmvn(x, window=11)
    t = 20  # an inside frame: the window is frames 15..25
    segment = x[:, 15:26]
    expected = (x[:, t] - segment.mean(axis=1)) / (segment.std(axis=1) + 1e-10)
    np.testing.assert_allclose(sliding[:, t], expected, rtol=1e-9)
    np.testing.assert_allclose(F.cmvn(x, window=1000), F.cmvn(x), rtol=1e-9)
    with pytest.raises(ValueError, match="window must be a positive number of frames"):
        F.cmvn(x, window=0)


# --- presets --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", SIGNALS)
def test_presets_match_fixtures(reference, name):
    y, rate = reference[f"{name}/signal"], int(reference[f"{name}/sample_rate"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short_8k is shorter than n_fft, as librosa warns
        assert_close_to_range(F.mfcc(y, rate), reference[f"{name}/librosa"])
        assert_close_to_range(F.mfcc(y, rate, **OVERRIDES), reference[f"{name}/librosa_overrides"])
    assert_close_to_range(F.mfcc(y, rate, preset="htk"), reference[f"{name}/htk"])


@pytest.mark.parametrize("name", SIGNALS)
def test_presets_match_live_libraries(reference, name):
    librosa = pytest.importorskip("librosa")
    psf = pytest.importorskip("python_speech_features")
    y, rate = reference[f"{name}/signal"], int(reference[f"{name}/sample_rate"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for overrides in ({}, OVERRIDES, {"win_length": 200, "hop_length": 100, "fmin": 50.0,
                                          "fmax": 3500.0, "lifter": 22.0, "n_mels": 30},
                          {"window": "hamming", "n_fft": 512}):
            expected = librosa.feature.mfcc(y=y, sr=rate, n_mfcc=13, **overrides).T
            assert_close_to_range(F.mfcc(y, rate, **overrides), expected)
        # librosa.feature.mfcc passes no top_db on: build its log-mel input by hand
        log_mel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=rate, n_fft=512),
                                      top_db=40.0)
        expected = librosa.feature.mfcc(S=log_mel, n_mfcc=13).T
        assert_close_to_range(F.mfcc(y, rate, n_fft=512, top_db=40.0), expected)
    assert_close_to_range(F.mfcc(y, rate, preset="htk"), psf.mfcc(y, samplerate=rate))
    expected = psf.mfcc(y, samplerate=rate, nfft=1024, nfilt=40, numcep=20, lowfreq=100,
                        preemph=0.9, ceplifter=0, appendEnergy=False, winfunc=np.hamming)
    got = F.mfcc(y, rate, 20, "htk", n_fft=1024, n_mels=40, fmin=100, pre_emphasis=0.9,
                 lifter=0, append_energy=False, window="povey")
    assert got.shape == expected.shape  # povey is not psf's hamming: shapes only
    got = F.mfcc(y, rate, 20, "htk", n_fft=1024, n_mels=40, fmin=100, pre_emphasis=0.9,
                 lifter=0, append_energy=False, window="rectangular")
    expected = psf.mfcc(y, samplerate=rate, nfft=1024, nfilt=40, numcep=20, lowfreq=100,
                        preemph=0.9, ceplifter=0, appendEnergy=False)
    assert_close_to_range(got, expected)


@pytest.mark.filterwarnings("ignore:n_fft=2048 is too large")  # librosa, on short takes
def test_presets_match_libraries_on_fsdd():
    librosa = pytest.importorskip("librosa")
    psf = pytest.importorskip("python_speech_features")
    import audio
    for path in fsdd_subset(50):
        y, rate = audio.load(path)
        assert_close_to_range(F.mfcc(y, rate), librosa.feature.mfcc(y=y, sr=rate, n_mfcc=13).T)
        assert_close_to_range(F.mfcc(y, rate, preset="htk"), psf.mfcc(y, samplerate=rate))


@pytest.mark.parametrize("preset", ["librosa", "htk"])
def test_batch_equals_each_signal(reference, preset):
    y = reference["speechlike_8k/signal"]
    batch = np.stack([y, 0.5 * y[::-1], np.zeros_like(y)] * 3)
    features = F.mfcc(batch, 8000, preset=preset, n_fft=256 if preset == "librosa" else None)
    assert features.shape[0] == 9
    for i in (0, 1, 2, 7):
        single = F.mfcc(batch[i], 8000, preset=preset, n_fft=256 if preset == "librosa" else None)
        np.testing.assert_allclose(features[i], single, rtol=1e-5, atol=1e-4)


def test_batch_blocks_equal_one_block(reference, monkeypatch):
    y = reference["speechlike_8k/signal"]
    batch = np.stack([y * (k + 1) / 10 for k in range(7)])
    whole = F.mfcc(batch, 8000, preset="htk")
    monkeypatch.setattr(F, "CPU_BLOCK_BYTES", 1)  # one utterance per block
    np.testing.assert_array_equal(F.mfcc(batch, 8000, preset="htk"), whole)


def test_dtype_follows_signal_and_frame_counts():
    y = np.random.default_rng(4).normal(size=4001) * 0.1
    assert F.mfcc(y, 8000, preset="htk").dtype == np.float64
    assert F.mfcc(y.astype(np.float32), 8000).dtype == np.float32
    assert F.mfcc((y * 3000).astype(np.int16), 8000).dtype == np.float32
    options = F.mfcc_options(8000, 13, "htk")
    assert F.num_frames(4001, options) == F.mfcc(y, 8000, preset="htk").shape[0] == 49
    assert F.mfcc(y, 8000, n_fft=256, hop_length=80).shape == (1 + 4001 // 80, 13)


def test_mfcc_errors_name_the_option():
    y = np.zeros(1000, np.float32)
    with pytest.raises(ValueError, match="preset must be one of .* got 'kaldi'"):
        F.mfcc(y, 8000, preset="kaldi")
    with pytest.raises(ValueError, match="top_db=60 applies to the dB log of preset 'librosa'"):
        F.mfcc(y, 8000, preset="htk", top_db=60)
    with pytest.raises(ValueError, match="sample_rate must be a positive integer"):
        F.mfcc(y, -8000)
    with pytest.raises(ValueError, match="n_mfcc=40 must be <= n_mels=26"):
        F.mfcc(y, 8000, 40, "htk")
    with pytest.raises(ValueError, match=r"signal must be \(samples,\) or \(batch, samples\)"):
        F.mfcc(np.zeros((2, 2, 100)), 8000)
    with pytest.raises(ValueError, match="signal has zero samples"):
        F.mfcc(np.zeros(0), 8000)
    with pytest.raises(ValueError, match="win_length=300 must be <= n_fft=256"):
        F.mfcc(y, 8000, n_fft=256, win_length=300)


@pytest.mark.cupy
def test_cupy_batch_runs_on_gpu_and_matches_numpy(reference):
    cupy = pytest.importorskip("cupy")
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # no driver or no GPU
        pytest.skip(f"no GPU: {error}")
    y = reference["speechlike_8k/signal"]
    batch = np.stack([y, y[::-1]])
    for preset in ("librosa", "htk"):
        got = F.mfcc(cupy.asarray(batch), 8000, preset=preset)
        assert isinstance(got, cupy.ndarray)
        assert_close_to_range(cupy.asnumpy(got)[1], F.mfcc(batch[1], 8000, preset=preset))
