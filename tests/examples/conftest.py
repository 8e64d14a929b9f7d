"""What the example tests share: each example loaded from its file, and a tiny fake FSDD.

The fake FSDD is tones, not speech (tests/minidl/apps/fake_fsdd.py): 1 speaker x 10 digits x 6
takes, so the official split (takes 0-4 test) trains on 10 recordings and tests on 50: enough
to run every step, small enough that all examples run in seconds. Its MFCCs are computed once
for the session, in a cache of its own.
"""
from __future__ import annotations

import importlib.util
import pathlib
from types import ModuleType

import pytest

from tests.minidl.apps.fake_fsdd import make_fake_fsdd

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def load_example(name: str) -> ModuleType:
    """examples/<name>.py as a module (the folder is not a package), without running main."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def fake_data_root(tmp_path_factory) -> pathlib.Path:
    """A MINIDL_DATA folder: <root>/fsdd/recordings/{digit}_{speaker}_{take}.wav."""
    root = tmp_path_factory.mktemp("data")
    make_fake_fsdd(root / "fsdd", speakers=("alice",), takes=6)
    return root


@pytest.fixture(scope="session")
def fake_fsdd(fake_data_root) -> pathlib.Path:
    """The fake FSDD folder, as --data takes it."""
    return fake_data_root / "fsdd"


@pytest.fixture(scope="session")
def feature_cache(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _cache(feature_cache, monkeypatch):
    monkeypatch.setenv("MINIDL_CACHE", str(feature_cache))
