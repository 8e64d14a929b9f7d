"""Fixtures of the benchmark tests: the fake FSDD of tones (tests/minidl/apps/fake_fsdd.py) and a
feature cache of their own, so no test reads or writes the real data's cache."""
from __future__ import annotations

import pytest

from tests.minidl.apps.fake_fsdd import make_fake_fsdd


@pytest.fixture(scope="session")
def fake_data(tmp_path_factory):
    """An FSDD folder of 2 speakers x 10 digits x 9 takes of generated tones."""
    return make_fake_fsdd(tmp_path_factory.mktemp("fsdd"))


@pytest.fixture(scope="session")
def feature_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _cache(feature_cache, monkeypatch):
    monkeypatch.setenv("MINIDL_CACHE", str(feature_cache))
