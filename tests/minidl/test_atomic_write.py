"""minidl.atomic_write: a file is replaced whole or not at all."""
from __future__ import annotations

import os

import numpy as np
import pytest

from minidl.atomic_write import atomic_savez, atomic_write, atomic_write_text


def test_a_writer_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "manifest.json"
    atomic_write_text(path, "old")
    os.chmod(path, 0o640)

    def half_then_fail(f):
        f.write(b"ne")
        raise RuntimeError("disk on fire")
    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(path, half_then_fail)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["manifest.json"]
    atomic_write_text(path, "néw")
    assert path.read_text(encoding="utf-8") == "néw" and (os.stat(path).st_mode & 0o777) == 0o640


def test_atomic_savez_writes_what_np_load_reads(tmp_path):
    atomic_savez(tmp_path / "w.npz", {"kernel": np.arange(6.0).reshape(2, 3)})
    with np.load(tmp_path / "w.npz", allow_pickle=False) as saved:
        np.testing.assert_array_equal(saved["kernel"], np.arange(6.0).reshape(2, 3))
