"""Fixtures the app tests share: a fake FSDD of tones, one feature cache, one trained CNN.

The CNN is trained once per test session (about ten seconds) and read by the tests of
digits, streaming and the command alike.
"""
from __future__ import annotations

import pytest

import audio
from minidl.apps import digits
from minidl.apps.features import FeatureSettings
from tests.minidl.apps.fake_fsdd import make_fake_fsdd


@pytest.fixture(scope="session")
def fake_data(tmp_path_factory):
    """An FSDD folder of 2 speakers x 10 digits x 9 takes of generated tones."""
    return make_fake_fsdd(tmp_path_factory.mktemp("fsdd"))


@pytest.fixture(scope="session")
def feature_cache(tmp_path_factory):
    """One cache for the session: the fake recordings' MFCCs are computed once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _cache(feature_cache, monkeypatch):
    monkeypatch.setenv("MINIDL_CACHE", str(feature_cache))


@pytest.fixture(scope="session")
def trained_cnn(fake_data, feature_cache, tmp_path_factory):
    """The folder of a CNN trained for 12 epochs on the fake data (official split, seed 0)."""
    out = tmp_path_factory.mktemp("cnn")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINIDL_CACHE", str(feature_cache))
        digits.train(digits.TrainSettings(model="cnn", epochs=12), out, fsdd=audio.fsdd.FSDD(fake_data),
                     verbose=0)
    return out


@pytest.fixture(scope="session")
def trained_logmel_cnn(fake_data, feature_cache, tmp_path_factory):
    """The folder of a CNN trained as trained_cnn's, on log mels (features kind "logmel")."""
    out = tmp_path_factory.mktemp("logmel_cnn")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINIDL_CACHE", str(feature_cache))
        digits.train(digits.TrainSettings(model="cnn", epochs=12), out, features=FeatureSettings(kind="logmel"),
                     fsdd=audio.fsdd.FSDD(fake_data), verbose=0)
    return out
