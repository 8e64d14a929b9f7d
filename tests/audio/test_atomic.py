"""audio.atomic: all-or-nothing writes, their temporary names, and the clean-up of stale ones."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time

import pytest

from audio import atomic
from audio.atomic import atomic_file



def test_atomic_file_writes_all_or_nothing(tmp_path):
    target = tmp_path / "table.bin"
    with atomic_file(target) as out:
        out.write(b"first")
    with pytest.raises(RuntimeError, match="midway"):
        with atomic_file(target) as out:
            out.write(b"second, half")
            raise RuntimeError("midway")
    assert target.read_bytes() == b"first" and [p.name for p in tmp_path.iterdir()] == [target.name]


def test_atomic_file_names_its_temporary_and_fsyncs_before_renaming(tmp_path, monkeypatch):
    target = tmp_path / "table.bin"
    events = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync") or fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append("replace") or replace(a, b))
    with atomic_file(target) as out:
        [temporary] = [p.name for p in tmp_path.iterdir()]
        out.write(b"data")
    assert re.fullmatch(rf"\.table\.bin\.minidl-tmp-{os.getpid()}-[0-9a-f]{{8}}", temporary)
    assert events[:2] == ["fsync", "replace"] and target.read_bytes() == b"data"


def test_atomic_file_keeps_the_permission_bits_of_an_existing_file(tmp_path):
    target = tmp_path / "SHA256SUMS"
    target.write_bytes(b"old")
    for mode in (0o640, 0o444, 0o604):
        target.chmod(mode)
        with atomic_file(target) as out:
            out.write(b"new")
        assert stat.S_IMODE(target.stat().st_mode) == mode and target.read_bytes() == b"new"
    umask = os.umask(0o022)
    try:
        with atomic_file(tmp_path / "fresh.bin") as out:
            out.write(b"x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "fresh.bin").stat().st_mode) == 0o644  # as open() makes it


def test_stale_temporaries_of_our_own_are_cleaned_on_the_next_write(tmp_path):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    dead = int(ended.stdout)
    live = os.getpid()
    files = {
        "dead writer": f".model.npz.minidl-tmp-{dead}-0123abcd",
        "old live writer": f".mfcc-htk-1.npz.minidl-tmp-{live}-89abcdef",
        "old, before issue 14": ".3_ann_0.wav.k2j_9x0a.part",
        "fresh live writer": f".table.bin.minidl-tmp-{live}-00ff00ff",
        "someone else's": ".config.json.tmp",
        "old, someone else's": "download.part",
    }
    for name in files.values():
        (tmp_path / name).write_bytes(b"partial")
    hour_ago = time.time() - 2 * atomic.STALE_SECONDS
    for reason in ("old live writer", "old, before issue 14", "old, someone else's"):
        os.utime(tmp_path / files[reason], (hour_ago, hour_ago))
    with atomic_file(tmp_path / "table.bin") as out:
        out.write(b"data")
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"table.bin", files["fresh live writer"], files["someone else's"],
                    files["old, someone else's"]}
