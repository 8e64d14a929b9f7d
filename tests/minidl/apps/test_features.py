"""minidl.apps.features: one FeatureSettings for both recognisers, and the features it names."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile

import audio
from audio import features as audio_features
from minidl.apps.features import FeatureSettings, file_features, finish_features, signal_features
from tests.minidl.apps.fake_fsdd import RATE, tone


def test_settings_refuse_an_unknown_normalization():
    with pytest.raises(ValueError, match="normalization must be 'global', 'utterance' or 'none', got 'cmvn'"):
        FeatureSettings(normalization="cmvn")


@pytest.mark.parametrize("delta_order, n_features", [(0, 13), (1, 26), (2, 39)])
def test_n_features_counts_the_deltas(delta_order, n_features):
    assert FeatureSettings(delta_order=delta_order).n_features == n_features


@pytest.mark.parametrize("saved", [
    # what minidl.apps.digits wrote before the two FeatureSettings classes became one
    {"sample_rate": 8000, "n_mfcc": 13, "preset": "htk", "delta_order": 1, "normalization": "global"},
    # what minidl.apps.ctc_digits' subclass wrote (same keys, its default "utterance")
    {"sample_rate": 8000, "n_mfcc": 13, "preset": "htk", "delta_order": 1, "normalization": "utterance"},
])
def test_saved_settings_of_either_recogniser_read_back_unchanged(saved):
    settings = FeatureSettings.from_dict(saved)
    # files written before trimming existed were not trimmed, whatever today's default is
    assert settings.to_dict() == {**saved, "trim_db": None}


def test_trimming_makes_padding_with_silence_the_same_word():
    rng = np.random.default_rng(0)
    word = (0.3 * np.sin(np.arange(3000) * 0.3) * np.hanning(3000)).astype(np.float32)
    padded = np.concatenate([np.zeros(4000, np.float32), word, np.zeros(4000, np.float32)])
    padded += 1e-5 * rng.standard_normal(len(padded)).astype(np.float32)
    trimmed = FeatureSettings(trim_db=30.0, normalization="utterance")
    plain = FeatureSettings(normalization="utterance")
    assert len(signal_features(padded, trimmed)) < len(signal_features(word, plain)) + 10
    assert len(signal_features(padded, plain)) > 3 * len(signal_features(word, plain))
    with pytest.raises(ValueError, match="trim_db"):
        FeatureSettings(trim_db=0)


def test_from_dict_ignores_keys_it_does_not_know_and_fills_missing_ones():
    settings = FeatureSettings.from_dict({"n_mfcc": 20, "added_later": True})
    assert settings == FeatureSettings(n_mfcc=20)


def test_finish_features_adds_deltas_and_normalises_only_when_asked():
    mfccs = np.random.default_rng(0).normal(3.0, 2.0, size=(40, 13))
    raw = finish_features(mfccs, FeatureSettings())
    assert raw.shape == (40, 26) and raw.dtype == np.float32
    np.testing.assert_allclose(raw[:, :13], mfccs, rtol=1e-6)   # "global" happens in the model
    np.testing.assert_allclose(raw[:, 13:], audio_features.deltas(mfccs, order=1), rtol=1e-5, atol=1e-6)
    cmvn = finish_features(mfccs, FeatureSettings(normalization="utterance"))
    np.testing.assert_allclose(cmvn.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(cmvn.std(axis=0), 1.0, rtol=1e-3)
    assert finish_features(mfccs, FeatureSettings(delta_order=0)).shape == (40, 13)


def test_signal_features_follow_the_mfcc_chain():
    signal = tone(4, 0)
    settings = FeatureSettings()
    expected = finish_features(audio_features.mfcc(signal, RATE, 13, preset="htk"), settings)
    np.testing.assert_array_equal(signal_features(signal, settings), expected)


def test_file_features_resample_and_name_an_unreadable_file(tmp_path):
    signal = tone(2, 0)
    soundfile.write(tmp_path / "at8k.wav", signal, RATE)
    soundfile.write(tmp_path / "at16k.wav", np.repeat(signal, 2), 2 * RATE)
    settings = FeatureSettings()
    assert file_features(tmp_path / "at8k.wav", settings).shape[1] == 26
    assert abs(len(file_features(tmp_path / "at16k.wav", settings)) - len(signal_features(signal, settings))) <= 1
    with pytest.raises(audio.AudioError, match="missing.wav"):
        file_features(tmp_path / "missing.wav", settings)


LOGMEL = FeatureSettings(kind="logmel", delta_order=0, normalization="none")


def test_log_mels_are_what_the_mfcc_chain_hands_its_dct():
    signal = tone(6, 0)
    logs = signal_features(signal, LOGMEL)
    mfccs = audio_features.mfcc(signal, RATE, 13, preset="htk", append_energy=False)
    assert logs.shape == (len(mfccs), 26)           # the HTK preset's 26 filters, the MFCCs' frames
    # the MFCC's own last stages (DCT, lifter) on these log mels give its output back
    again = audio_features.mfcc(S=logs.astype(np.float64), n_mfcc=13, preset="htk", append_energy=False)
    np.testing.assert_allclose(again, mfccs, rtol=1e-4, atol=1e-4 * np.abs(mfccs).max())
    # and the filterbank's energies, logged, are these values
    mels = audio_features.melspectrogram(signal, RATE, preset="htk")
    np.testing.assert_allclose(np.exp(logs), mels, rtol=1e-4, atol=1e-12)


def test_log_mels_get_the_same_deltas_and_normalisation():
    signal = tone(2, 1)
    logs = signal_features(signal, LOGMEL)
    with_deltas = signal_features(signal, FeatureSettings(kind="logmel", normalization="utterance"))
    assert with_deltas.shape == (len(logs), 52)
    np.testing.assert_allclose(with_deltas.mean(axis=0), 0.0, atol=1e-4)
    raw = signal_features(signal, FeatureSettings(kind="logmel"))
    np.testing.assert_allclose(raw[:, 26:], audio_features.deltas(logs, order=1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("delta_order, n_features", [(0, 26), (1, 52), (2, 78)])
def test_n_features_of_log_mels_count_the_mel_filters(delta_order, n_features):
    assert FeatureSettings(kind="logmel", delta_order=delta_order).n_features == n_features
    assert FeatureSettings(kind="logmel", preset="librosa").n_features == 256    # its 128 Slaney mels


@pytest.mark.parametrize("kind", ["mel", "MFCC", None, 3])
def test_settings_refuse_an_unknown_kind(kind):
    with pytest.raises(ValueError, match=r"FeatureSettings: kind must be 'mfcc' or 'logmel'") as error:
        FeatureSettings(kind=kind)
    assert str(error.value).endswith(f"got {kind!r}")


def test_the_kind_round_trips_and_an_old_dict_reads_as_mfccs():
    import json
    logmel = FeatureSettings(kind="logmel", trim_db=30.0)
    saved = json.loads(json.dumps(logmel.to_dict()))
    assert saved["kind"] == "logmel" and FeatureSettings.from_dict(saved) == logmel
    old = {"sample_rate": 8000, "n_mfcc": 13, "preset": "htk", "delta_order": 1, "normalization": "global",
           "trim_db": 30.0}
    assert FeatureSettings.from_dict(old).kind == "mfcc"
    # MFCC settings write no kind: their metadata and cache keys are those of before
    assert FeatureSettings(trim_db=30.0).to_dict() == old


def test_finish_features_refuse_frames_of_the_other_kind():
    with pytest.raises(ValueError, match=r"kind 'logmel' takes \(frames, 26\) log mels, got shape \(40, 13\)"):
        finish_features(np.zeros((40, 13)), FeatureSettings(kind="logmel"))
    with pytest.raises(ValueError, match=r"kind 'mfcc' takes \(frames, 13\) MFCCs, got shape \(40, 26\)"):
        finish_features(np.zeros((40, 26)), FeatureSettings())
