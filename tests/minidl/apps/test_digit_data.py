"""minidl.apps.digit_data: what a digit recogniser trains on, synthetic voices included.

The synthetic voices are stood in for by tone recordings of a third "speaker" (the engines are
optional; tests/audio/test_synthetic.py covers them), so these tests check the joining: the
voices go to the training side only, get features from a cache of their own, and get augmented
copies like FSDD's recordings.
"""
from __future__ import annotations

import numpy as np
import pytest
import soundfile

import audio
from audio.fsdd import Recording
from minidl.apps import augmentation, digit_data, digits
from minidl.apps.augmentation import AugmentSettings
from minidl.apps.features import FeatureSettings
from tests.minidl.apps.fake_fsdd import RATE, tone


@pytest.fixture
def fake_voices(tmp_path, monkeypatch):
    """synthetic_digits(n) -> the ten digits of n tone 'voices' written to tmp_path."""
    asked = []

    def synthetic_digits(n_voices):
        asked.append(n_voices)
        made = []
        for v in range(n_voices):
            for digit in range(10):
                path = tmp_path / f"{digit}_espeak-voice{v}_0.wav"
                if not path.is_file():
                    soundfile.write(path, tone(digit, 0, 1.2 + 0.05 * v, seed=7 + 10 * v + digit), RATE)
                made.append(Recording(path, digit, f"espeak-voice{v}", 0))
        return made

    monkeypatch.setattr(digit_data, "synthetic_digits", synthetic_digits)
    monkeypatch.setattr(digit_data, "missing_engines", lambda: [])   # the stand-in needs no engine
    return asked


def test_synthetic_voices_join_the_training_side_only(fake_data, fake_voices):
    fsdd = audio.fsdd.FSDD(fake_data)
    plain = digit_data.TrainSettings(split="speaker", held_out="bob")
    voiced = digit_data.TrainSettings(split="speaker", held_out="bob", synthetic_voices=2)
    features = FeatureSettings()
    train_x, train_y, test_x, test_y, test = digit_data.load_data(plain, features, fsdd, progress=False)
    v_train_x, v_train_y, v_test_x, v_test_y, v_test = digit_data.load_data(voiced, features, fsdd, progress=False)
    assert fake_voices == [2]
    assert len(v_train_x) == len(train_x) + 20
    assert list(v_train_y[len(train_y):]) == list(range(10)) * 2
    assert [r.name for r in v_test] == [r.name for r in test]                # the test side is FSDD's
    assert all(np.array_equal(a, b) for a, b in zip(v_test_x, test_x))
    assert all(np.array_equal(a, b) for a, b in zip(v_train_x, train_x))     # FSDD's features unchanged
    assert all(f.shape[1] == features.n_features for f in v_train_x[len(train_x):])


def test_synthetic_voices_get_augmented_copies_without_recomputing_fsdds(fake_data, fake_voices, monkeypatch):
    fsdd = audio.fsdd.FSDD(fake_data)
    settings = digit_data.TrainSettings(split="speaker", held_out="bob", augment=True,
                                        augmentation=AugmentSettings(copies=1))
    features = FeatureSettings()
    digit_data.training_copies(settings, features, fsdd, progress=False)     # FSDD's copies cached
    calls = []
    real = augmentation.augmented_features
    monkeypatch.setattr(augmentation, "augmented_features", lambda *a: calls.append(1) or real(*a))
    settings.synthetic_voices = 1
    copies = digit_data.training_copies(settings, features, fsdd, progress=False)
    train, _ = fsdd.split("speaker", held_out="bob")
    assert len(copies) == 1 and len(copies[0]) == len(train) + 10
    assert len(calls) == 10                                                  # only the voice's ten


def test_a_run_records_how_many_voices_it_trained_on(fake_data, fake_voices, tmp_path):
    settings = digits.TrainSettings(model="crnn", epochs=1, split="speaker", held_out="bob", synthetic_voices=1)
    metrics = digits.train(settings, tmp_path, fsdd=audio.fsdd.FSDD(fake_data), verbose=0, progress=False)
    assert metrics["settings"]["synthetic_voices"] == 1


def test_without_the_engines_a_recipe_trains_without_its_voices_and_says_so(monkeypatch):
    monkeypatch.setattr(digit_data, "missing_engines", lambda: ["espeak-ng"])
    settings = digit_data.TrainSettings(synthetic_voices=300)
    with pytest.warns(UserWarning, match="espeak-ng not installed: training without the 300 synthetic voices"):
        usable = digit_data.with_available_voices(settings)
    assert usable.synthetic_voices == 0 and settings.synthetic_voices == 300
    monkeypatch.setattr(digit_data, "missing_engines", lambda: [])
    assert digit_data.with_available_voices(settings) is settings


def test_log_mel_features_come_from_a_cache_of_their_own(fake_data):
    from minidl.apps.features import file_features
    fsdd = audio.fsdd.FSDD(fake_data)
    recordings = fsdd.recordings()[:4]
    settings = FeatureSettings(kind="logmel", trim_db=30.0)
    got = digit_data.dataset_features(fsdd, recordings, settings, progress=False)
    assert all(x.shape[1] == 52 for x in got)
    for x, r in zip(got, recordings):
        np.testing.assert_allclose(x, file_features(r.path, settings), rtol=1e-5, atol=1e-5)
    mfccs = digit_data.dataset_features(fsdd, recordings, FeatureSettings(trim_db=30.0), progress=False)
    assert all(x.shape[1] == 26 for x in mfccs)
