"""audio.cache: the cache root, content keys, the atomic stacked-npz store, cached MFCCs."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from audio import cache
from audio.cache import (cache_key, cache_root, cached_features, feature_cache_key,
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
    # A changed key silently orphans every cache on disk: these values must not move. The
    # feature key is format 2 since issue 14 (file contents, not sizes); cache_key is as it was
    # before audio.cache existed.
    assert cache_key({"b": [1, 2], "a": Path("x")}) == cache_key({"a": "x", "b": [1, 2]})
    assert cache_key({"format": 1}) == "5e5fbf8b2105e97e80ad"
    (tmp_path / "0_ann_0.wav").write_bytes(b"1234")
    assert feature_cache_key([tmp_path / "0_ann_0.wav"], 8000, {"n_mfcc": 13}) == \
        "c4f697a3a6e46829b40b"


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


# --- issue 14: damaged caches, content keys, recognisable temporaries, fsync, permissions ---

def _recordings(folder: Path) -> list[Path]:
    write_fake_fsdd(folder, takes=(0, 5))
    return sorted(folder.glob("*.wav"))


def _age(paths, seconds=7200):
    """Set mtimes in the past, as for files that have sat on disk (digests get remembered)."""
    for path in paths:
        past = path.stat().st_mtime - seconds
        os.utime(path, (past, past))


def _damage_truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _damage_empty(path):
    path.write_bytes(b"")


def _damage_garbage(path):
    path.write_bytes(b"these are not features\n" * 50)


def _damage_lengths(path):
    with np.load(path, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files}
    arrays["lengths"] = arrays["lengths"] + 1  # no longer adds up to the frames stored
    np.savez(path, **arrays)


def _damage_member(path):
    with np.load(path, allow_pickle=False) as stored:
        arrays = {key: stored[key] for key in stored.files if key != "lengths"}
    np.savez(path, **arrays)


@pytest.mark.parametrize("damage", [_damage_truncated, _damage_empty, _damage_garbage,
                                    _damage_lengths, _damage_member])
def test_a_damaged_cache_is_named_moved_aside_and_rebuilt(tmp_path, damage):
    paths = _recordings(tmp_path / "rec")
    folder = tmp_path / "cache"
    first = cached_features(paths, 8000, cache_dir=folder, progress=False)
    [stored] = folder.glob("*.npz")
    damage(stored)
    with pytest.warns(UserWarning, match=rf"cache file .*{stored.name} is damaged .*moved it "
                                         rf"to {stored.name}.damaged; it will be rebuilt"):
        again = cached_features(paths, 8000, cache_dir=folder, progress=False)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert (folder / f"{stored.name}.damaged").is_file()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt file is whole: no second warning
        third = cached_features(paths, 8000, cache_dir=folder, progress=False)
    assert all(np.array_equal(a, b) for a, b in zip(first, third))


def test_load_stacked_moves_a_damaged_file_aside(tmp_path):
    path = tmp_path / "connected-htk-0123.npz"
    path.write_bytes(b"PK\x03\x04 cut off")
    with pytest.warns(UserWarning, match="connected-htk-0123.npz is damaged"):
        assert load_stacked(path, ["12"], label_name="transcripts") is None
    assert not path.exists() and (tmp_path / "connected-htk-0123.npz.damaged").is_file()


def test_changed_audio_of_the_same_size_and_mtime_is_recomputed(tmp_path):
    paths = _recordings(tmp_path / "rec")
    _age(paths)
    folder = tmp_path / "cache"
    first = cached_features(paths, 8000, cache_dir=folder, progress=False)
    target = paths[0]
    info = target.stat()
    data = bytearray(target.read_bytes())
    data[-200:] = bytes(200)  # silence the last 100 samples: same size, other audio
    target.write_bytes(bytes(data))
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))  # and the same mtime
    assert target.stat().st_size == info.st_size
    again = cached_features(paths, 8000, cache_dir=folder, progress=False)
    expected = mfcc(load(target)[0], 8000, preset="htk")
    np.testing.assert_allclose(again[0], expected, rtol=1e-6)
    assert not np.array_equal(again[0], first[0])
    assert all(np.array_equal(a, b) for a, b in zip(first[1:], again[1:]))
    assert len(list(folder.glob("*.npz"))) == 2


def test_digests_are_remembered_by_path_size_and_times(tmp_path, monkeypatch):
    paths = _recordings(tmp_path / "rec")
    _age(paths)
    index = tmp_path / "cache" / cache.DIGEST_INDEX
    hashed = []
    real = cache.sha256_of
    monkeypatch.setattr(cache, "sha256_of", lambda path: hashed.append(Path(path)) or real(path))
    first = cache.file_digests(paths, index)
    assert first == [real(p) for p in paths] and len(hashed) == len(paths)
    stored = json.loads(index.read_text())
    assert stored["format"] == "minidl-file-digests" and len(stored["files"]) == len(paths)
    hashed.clear()
    assert cache.file_digests(paths, index) == first and hashed == []  # nothing hashed again
    paths[1].write_bytes(paths[1].read_bytes())  # rewritten: a new ctime, even if equal
    assert cache.file_digests(paths, index) == first and hashed == [paths[1]]
    index.write_text("{ not json")
    with pytest.warns(UserWarning, match=f"digest index .*{cache.DIGEST_INDEX} cannot be read"):
        assert cache.file_digests(paths, index) == first
    assert not list(index.parent.glob(".*"))  # written by atomic_file: no temporaries left


def test_fresh_files_are_hashed_but_not_remembered(tmp_path):
    paths = _recordings(tmp_path / "rec")   # just written: a coarse clock could hide a change
    index = tmp_path / "cache" / cache.DIGEST_INDEX
    assert cache.file_digests(paths, index) == [cache.sha256_of(p) for p in paths]
    assert not index.exists()


def test_the_feature_key_is_stable_across_runs_copies_and_touches(tmp_path):
    paths = _recordings(tmp_path / "rec")
    options = {"n_mfcc": 13}
    key = feature_cache_key(paths, 8000, options, index=tmp_path / "index.json")
    copies = tmp_path / "copy"
    copies.mkdir()
    for path in paths:
        shutil.copyfile(path, copies / path.name)
    moved = sorted(copies.glob("*.wav"))
    _age(moved, 30)
    assert feature_cache_key(moved, 8000, options) == key
    assert feature_cache_key(moved, 8000, options, index=tmp_path / "index.json") == key
    assert feature_cache_key(moved, 16000, options) != key


def test_cached_features_file_is_named_by_feature_cache_key(tmp_path):
    import dataclasses

    import soundfile

    from audio.features import mfcc_options
    paths = []
    for i in range(2):
        path = tmp_path / f"{i}_ann_0.wav"
        soundfile.write(path, 0.3 * np.sin(np.arange(4000) * (0.1 + i / 10)).astype(np.float32), 8000)
        paths.append(path)
    folder = tmp_path / "cache"
    cached_features(paths, 8000, cache_dir=folder, progress=False)
    key = feature_cache_key(paths, 8000, dataclasses.asdict(mfcc_options(8000, 13, "htk")))
    assert (folder / f"mfcc-htk-{key}.npz").is_file()


def test_trimmed_features_are_cached_apart_and_are_shorter(tmp_path):
    import soundfile
    tone = 0.3 * np.sin(np.arange(4000) * 0.2).astype(np.float32)
    padded = np.concatenate([np.zeros(4000, np.float32), tone, np.zeros(4000, np.float32)])
    path = tmp_path / "0_ann_0.wav"
    soundfile.write(path, padded, 8000)
    folder = tmp_path / "cache"
    whole = cached_features([path], 8000, cache_dir=folder, progress=False)[0]
    trimmed = cached_features([path], 8000, cache_dir=folder, progress=False, trim_db=30.0)[0]
    assert len(list(folder.glob("mfcc-htk-*.npz"))) == 2      # two parameter sets, two files
    assert len(whole) == 1 + (12000 - 200 + 79) // 80         # every 10 ms frame of 1.5 s
    assert abs(len(trimmed) - len(whole) / 3) < 8             # the tone alone (0.5 s), margins kept


def test_log_mels_are_cached_apart_and_mfccs_keep_their_file(tmp_path, monkeypatch):
    import dataclasses

    import soundfile

    from audio.features import log_mel_frames, mfcc_options
    path = tmp_path / "0_ann_0.wav"
    signal = 0.3 * np.sin(np.arange(4000) * 0.2).astype(np.float32)
    soundfile.write(path, signal, 8000, subtype="FLOAT")
    folder = tmp_path / "cache"
    mfccs = cached_features([path], 8000, cache_dir=folder, progress=False)[0]
    logs = cached_features([path], 8000, cache_dir=folder, progress=False, kind="logmel")[0]
    key = feature_cache_key([path], 8000, dataclasses.asdict(mfcc_options(8000, 13, "htk")))
    assert (folder / f"mfcc-htk-{key}.npz").is_file()           # the MFCCs' name as before kinds
    assert len(list(folder.glob("logmel-htk-*.npz"))) == 1
    assert mfccs.shape == (49, 13) and logs.shape == (49, 26) and logs.dtype == np.float32
    np.testing.assert_allclose(logs, log_mel_frames(signal, mfcc_options(8000, 13, "htk")), rtol=1e-6)
    def recomputed(*args):
        raise AssertionError("the log mels were computed again")
    monkeypatch.setattr(cache, "log_mel_frames", recomputed)
    again = cached_features([path], 8000, cache_dir=folder, progress=False, kind="logmel")[0]
    np.testing.assert_array_equal(again, logs)                   # read back from the file
    with pytest.raises(ValueError, match="cached_features: kind must be one of 'mfcc', 'logmel', got 'mel'"):
        cached_features([path], 8000, cache_dir=folder, progress=False, kind="mel")
