"""audio.features.chain: mfcc against fixtures and libraries, batches, dtypes, GPU; and
entering the chain at a power or a log mel spectrogram (melspectrogram(S=...), mfcc(S=...))."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from audio import features as F
from audio.features import chain
from tests.audio._helpers import assert_close_to_range, fsdd_subset

SIGNALS = ("speechlike_8k", "speechlike_16k", "short_8k")
OVERRIDES = {"n_fft": 256, "hop_length": 80, "n_mels": 40}  # as make_audio_fixtures.py


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
    monkeypatch.setattr(chain, "CPU_BLOCK_BYTES", 1)  # one utterance per block
    # Not bit for bit: OpenBLAS may take another kernel for a product with fewer rows, and
    # the last float32 bit of a coefficient then differs (seen: 1.2e-5 on a C0 of -5.6).
    np.testing.assert_allclose(F.mfcc(batch, 8000, preset="htk"), whole, rtol=1e-5, atol=1e-5)


def test_dtype_follows_signal_and_frame_counts():
    y = np.random.default_rng(4).normal(size=4001) * 0.1
    assert F.mfcc(y, 8000, preset="htk").dtype == np.float64
    assert F.mfcc(y.astype(np.float32), 8000).dtype == np.float32
    assert F.mfcc((y * 3000).astype(np.int16), 8000).dtype == np.float32
    options = F.mfcc_options(8000, 13, "htk")
    assert F.num_frames(4001, options) == F.mfcc(y, 8000, preset="htk").shape[0] == 49
    assert F.mfcc(y, 8000, n_fft=256, hop_length=80).shape == (1 + 4001 // 80, 13)


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
    # entering at a spectrogram runs on the GPU too
    mel = F.melspectrogram(cupy.asarray(batch), 8000)
    assert isinstance(mel, cupy.ndarray)
    logs = F.log_mel(mel)
    assert_close_to_range(cupy.asnumpy(F.mfcc(S=logs))[0], F.mfcc(batch[0], 8000))


# --- entering the chain part way -------------------------------------------------------------


def _power(y: np.ndarray, options: F.MFCCOptions) -> np.ndarray:
    """The chain up to the power spectrum, stage by stage, as a reader would run it."""
    o = options
    emphasised = F.pre_emphasis(y, o.pre_emphasis)
    frames = F.frame_signal(F.pad_signal(emphasised, o.frame_length, o.hop_length, o.padding),
                            o.frame_length, o.hop_length)
    return F.power_spectrum(F.apply_window(frames, o.window, o.win_length), o.n_fft,
                            normalize=o.normalize_power)


@pytest.mark.parametrize("preset", ["librosa", "htk"])
@pytest.mark.parametrize("name", SIGNALS)
def test_entering_at_a_spectrogram_gives_the_whole_chain(reference, name, preset):
    y, rate = reference[f"{name}/signal"], int(reference[f"{name}/sample_rate"])
    y = np.stack([y, 0.5 * y[::-1]])  # a batch enters the same way
    options = F.mfcc_options(rate, 13, preset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short_8k is shorter than n_fft
        mel = F.melspectrogram(S=_power(y, options), sample_rate=rate, preset=preset)
        np.testing.assert_array_equal(mel, F.melspectrogram(y, rate, preset))
        logs = F.log_mel(mel, options.log, top_db=options.top_db)
        if preset == "librosa":
            np.testing.assert_array_equal(F.mfcc(S=logs), F.mfcc(y, rate))
        else:
            # C0 of the whole chain is the log frame energy, which S does not hold
            got = F.mfcc(S=logs, preset="htk", append_energy=False)
            whole = F.mfcc(y, rate, preset="htk")
            np.testing.assert_array_equal(got[..., 1:], whole[..., 1:])
            np.testing.assert_array_equal(
                got, F.mfcc(y, rate, preset="htk", append_energy=False))
    assert mel.shape == (2, logs.shape[-2], options.n_mels) and mel.dtype == np.float32


@pytest.mark.parametrize("preset", ["librosa", "htk"])
@pytest.mark.parametrize("name", SIGNALS)
def test_log_mel_frames_stop_the_chain_before_its_dct(reference, name, preset):
    y, rate = reference[f"{name}/signal"], int(reference[f"{name}/sample_rate"])
    y = np.stack([y, 0.5 * y[::-1]])
    options = F.mfcc_options(rate, 13, preset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short_8k is shorter than n_fft
        logs = F.log_mel_frames(y, options)
        # the stages by hand: the power spectrum, the filterbank, the preset's log
        mel = F.melspectrogram(S=_power(y, options), sample_rate=rate, preset=preset)
        np.testing.assert_array_equal(logs, F.log_mel(mel, options.log, top_db=options.top_db))
        # and the DCT of them is the whole chain (C0 the DCT's where htk would take the energy)
        whole = F.mfcc(y, rate, preset=preset, append_energy=False)
        np.testing.assert_array_equal(F.mfcc(S=logs, preset=preset, append_energy=False), whole)
        frames = F.frame_signal(F.pad_signal(F.pre_emphasis(y, options.pre_emphasis), options.frame_length,
                                             options.hop_length, options.padding),
                                options.frame_length, options.hop_length)
        np.testing.assert_array_equal(F.frames_to_log_mel(frames, options), logs)
    assert logs.shape == (2, whole.shape[-2], options.n_mels) and logs.dtype == np.float32


@pytest.mark.parametrize("name", SIGNALS)
def test_spectrogram_entries_match_librosa(reference, name):
    librosa = pytest.importorskip("librosa")
    y, rate = reference[f"{name}/signal"], int(reference[f"{name}/sample_rate"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        power = _power(y, F.mfcc_options(rate, 13, "librosa", n_fft=512))
        expected = librosa.feature.melspectrogram(S=np.ascontiguousarray(power.T), sr=rate).T
        assert_close_to_range(F.melspectrogram(S=power, sample_rate=rate), expected)
        assert_close_to_range(F.melspectrogram(y, rate, n_fft=512),
                              librosa.feature.melspectrogram(y=y, sr=rate, n_fft=512).T)
        S = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=rate))  # (n_mels, t)
        for lifter in (0, 22):
            expected = librosa.feature.mfcc(S=S, n_mfcc=13, lifter=lifter).T
            assert_close_to_range(F.mfcc(S=np.ascontiguousarray(S.T), lifter=lifter), expected)


def test_spectrogram_entries_say_what_is_wrong():
    logs = np.zeros((5, 26), np.float32)
    with pytest.raises(ValueError, match="pass a signal or S .*not both"):
        F.mfcc(np.zeros(800, np.float32), 8000, S=logs)
    with pytest.raises(ValueError, match="pass a signal and its sample_rate, or S"):
        F.mfcc()
    with pytest.raises(ValueError, match="n_fft, top_db set the stages before the DCT"):
        F.mfcc(S=logs, n_fft=512, top_db=60.0)
    with pytest.raises(ValueError, match="preset 'htk' puts ln\\(frame energy\\) in C0.*"
                                         "append_energy=False"):
        F.mfcc(S=logs, preset="htk")
    with pytest.raises(ValueError, match="n_mfcc=30 must be between 1 and the 26 mel bands"):
        F.mfcc(S=logs, n_mfcc=30)
    with pytest.raises(ValueError, match=r"time-major \(frames, n_mels\).*got shape \(26,\)"):
        F.mfcc(S=logs[0])
    with pytest.raises(ValueError, match="preset must be one of"):
        F.mfcc(S=logs, preset="kaldi")
    power = np.ones((5, 129), np.float32)
    with pytest.raises(ValueError, match="S has 129 frequency bins, but n_fft=512 gives 257"):
        F.melspectrogram(S=power, sample_rate=8000, n_fft=512)
    with pytest.raises(ValueError, match="hop_length sets the framing"):
        F.melspectrogram(S=power, sample_rate=8000, hop_length=80)
    with pytest.raises(ValueError, match="sample_rate must be a positive integer"):
        F.melspectrogram(S=power)
    with pytest.raises(ValueError, match="S must hold floats"):
        F.melspectrogram(S=power.astype(np.int32), sample_rate=8000)
    assert F.melspectrogram(S=power, sample_rate=8000, n_mels=20).shape == (5, 20)  # n_fft 256
