"""benchmarks/blas_kernel.py's settings, and summary.py's table of them."""
from __future__ import annotations

import sys
from pathlib import Path

from benchmarks import summary

sys.path.insert(0, str(Path(summary.__file__).parent))  # blas_kernel imports _timing as a script does
from benchmarks import blas_kernel  # noqa: E402


def test_settings_differ_only_in_the_two_variables_and_come_once_each():
    both = blas_kernel.settings({"PATH": "/bin", "OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "512"})
    assert list(both) == ["as set", "OPENBLAS_CORETYPE unset", "both unset"]
    assert both["as set"]["OPENBLAS_CORETYPE"] == "Haswell"
    assert "OPENBLAS_CORETYPE" not in both["OPENBLAS_CORETYPE unset"] and both["OPENBLAS_CORETYPE unset"]["OPENBLAS_L2_SIZE"] == "512"
    assert not {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"} & set(both["both unset"])
    assert all(env["PATH"] == "/bin" for env in both.values())
    assert list(blas_kernel.settings({"OPENBLAS_CORETYPE": "Haswell"})) == ["as set", "OPENBLAS_CORETYPE unset"]
    assert list(blas_kernel.settings({"PATH": "/bin"})) == ["as set"]


def record(setting, kernel, seconds, **env):
    return {"name": "blas_kernel", "setting": setting, "kernel": kernel, "rounds": 3,
            "env": {"OPENBLAS_CORETYPE": None, "OPENBLAS_L2_SIZE": None, **env},
            "results": {name: {"min_seconds": seconds, "median_seconds": 2 * seconds}
                        for name, _ in summary.BLAS_ROWS}}


def test_the_table_puts_each_setting_in_a_column_and_the_first_over_the_last(monkeypatch):
    rows = [record("as set", "Haswell", 3e-3, OPENBLAS_CORETYPE="Haswell"), record("both unset", "SkylakeX", 2e-3)]
    monkeypatch.setattr(summary, "records", lambda name: rows if name == "blas_kernel" else [])
    lines = summary.blas_kernel_lines()
    assert "this machine sets OPENBLAS_CORETYPE=Haswell." in lines[1]
    assert lines[3] == "| what | as set (Haswell kernel) | both unset (SkylakeX kernel) | as set / both unset, min |"
    table = [line for line in lines if line.startswith("| GEMM") or line.startswith("| minidl")]
    assert len(table) == len(summary.BLAS_ROWS)
    assert all(line.endswith("| 3.0 ms / 6.0 ms | 2.0 ms / 4.0 ms | 1.50× |") for line in table)


def test_one_setting_says_there_was_nothing_to_compare(monkeypatch):
    monkeypatch.setattr(summary, "records", lambda name: [record("as set", "SkylakeX", 1e-3)] if name == "blas_kernel" else [])
    assert "were not set on its machine" in summary.blas_kernel_lines()[1]
