"""audio.cache: the cache root, content keys, the atomic stacked-npz store, cached MFCCs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audio import cache
from audio.cache import (atomic_file, cache_key, cache_root, cached_features, feature_cache_key,
                         load_stacked, save_stacked)
from audio.features import mfcc
from audio.fsdd import FSDD
from audio.io import load
from tests.audio._helpers import write_fake_fsdd


def test_cache_root_follows_minidl_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("MINIDL_CACHE", str(tmp_path))
    assert cache_root() == tmp_path
    monkeypatch.delenv("MINIDL_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "minidl"


def test_keys_are_pinned(tmp_path):
    # A changed key silently orphans every cache on disk: these values (from the code before
    # audio.cache existed) must not move.
    assert cache_key({"b": [1, 2], "a": Path("x")}) == cache_key({"a": "x", "b": [1, 2]})
    assert cache_key({"format": 1}) == "5e5fbf8b2105e97e80ad"
    (tmp_path / "0_ann_0.wav").write_bytes(b"1234")
    assert feature_cache_key([tmp_path / "0_ann_0.wav"], 8000, {"n_mfcc": 13}) == \
        "b2e45303e8b1a2da967f"


def test_atomic_file_writes_all_or_nothing(tmp_path):
    target = tmp_path / "table.bin"
    with atomic_file(target) as out:
        out.write(b"first")
    with pytest.raises(RuntimeError, match="midway"):
        with atomic_file(target) as out:
            out.write(b"second, half")
            raise RuntimeError("midway")
    assert target.read_bytes() == b"first" and [p.name for p in tmp_path.iterdir()] == [target.name]


def test_stacked_store_round_trip_and_mismatch(tmp_path):
    arrays = [np.ones((3, 2), np.float32), np.zeros((1, 2), np.float32), np.full((2, 2), 5.0)]
    path = tmp_path / "sub" / "store.npz"
    assert load_stacked(path, ["a", "b", "c"]) is None  # nothing stored yet
    save_stacked(path, arrays, ["a", "b", "c"], label_name="transcripts")
    loaded = load_stacked(path, ["a", "b", "c"], label_name="transcripts")
    assert [a.shape for a in loaded] == [(3, 2), (1, 2), (2, 2)]
    for got, want in zip(loaded, arrays):
        np.testing.assert_array_equal(got, want)
    assert load_stacked(path, ["a", "b"], label_name="transcripts") is None  # other items
    with np.load(path, allow_pickle=False) as stored:
        assert set(stored.files) == {"features", "lengths", "transcripts"}
    with pytest.raises(ValueError, match="one label per array"):
        save_stacked(path, arrays, ["a"])
    assert cached_features([], 8000, cache_dir=tmp_path / "empty") == []


def test_feature_cache_computes_once(tmp_path, monkeypatch):
    data = tmp_path / "data" / "fsdd"
    write_fake_fsdd(data / "recordings")
    data.chmod(0o555)  # the data folder may be read-only: nothing may be written there
    monkeypatch.setenv("MINIDL_CACHE", str(tmp_path / "cache"))
    dataset = FSDD(data)
    try:
        first = dataset.features(progress=False)
        files = list((tmp_path / "cache" / "features").glob("*.npz"))
        assert len(files) == 1 and not list(files[0].parent.glob(".*"))  # no temporaries left
        monkeypatch.setattr(cache, "mfcc_from_options",
                            lambda *a: pytest.fail("recomputed instead of loading the cache"))
        again = dataset.features(progress=False)
        assert all(np.array_equal(a, b) for a, b in zip(first, again))
        one = dataset.split("official")[1][:3]
        subset = dataset.features(one, progress=False)
        expected = mfcc(load(one[2].path)[0], 8000, preset="htk")
        np.testing.assert_allclose(subset[2], expected, rtol=1e-6)
        assert first[0].dtype == np.float32 and first[0].shape[1] == 13
        with np.load(files[0], allow_pickle=False) as stored:
            assert set(stored.files) == {"features", "lengths", "names"}
        monkeypatch.undo()
        monkeypatch.setenv("MINIDL_CACHE", str(tmp_path / "cache"))
        dataset.features(progress=False, n_mfcc=20)  # a new parameter set, a new file
        assert len(list((tmp_path / "cache" / "features").glob("*.npz"))) == 2
        assert not list(data.rglob("*.npz"))
    finally:
        data.chmod(0o755)


def test_cached_features_show_a_progress_bar(tmp_path, capsys):
    checksums = write_fake_fsdd(tmp_path / "rec", takes=(0,))
    cached_features(sorted((tmp_path / "rec").glob("*.wav")), 8000, cache_dir=tmp_path / "c")
    assert f"{len(checksums)}/{len(checksums)}" in capsys.readouterr().err
