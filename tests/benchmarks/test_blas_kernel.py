"""benchmarks/blas_kernel.py's settings, and summary.py's table of them."""
from __future__ import annotations

import json
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
    assert list(blas_kernel.settings({"OPENBLAS_CORETYPE": "", "OPENBLAS_L2_SIZE": ""})) == ["as set"]  # empty is unset


def record(setting, kernel, seconds, **env):
    return {"name": "blas_kernel", "setting": setting, "kernel": kernel, "rounds": 3,
            "env": {"OPENBLAS_CORETYPE": None, "OPENBLAS_L2_SIZE": None, **env},
            "results": {name: {"min_seconds": seconds, "median_seconds": 2 * seconds}
                        for name, _ in summary.BLAS_ROWS}}


def test_the_table_puts_each_setting_in_a_column_and_the_first_over_the_last(monkeypatch):
    rows = [record("as set", "Haswell", 3e-3, OPENBLAS_CORETYPE="Haswell"), record("both unset", "SkylakeX", 2e-3)]
    monkeypatch.setattr(summary, "records", lambda name: rows if name == "blas_kernel" else [])
    lines = summary.blas_kernel_lines()
    assert "its machine sets OPENBLAS_CORETYPE=Haswell." in lines[1]
    assert lines[3] == "| what | as set (Haswell kernel) | both unset (SkylakeX kernel) | as set / both unset, min |"
    table = [line for line in lines if line.startswith("| GEMM") or line.startswith("| minidl")]
    assert len(table) == len(summary.BLAS_ROWS)
    assert all(line.endswith("| 3.0 ms / 6.0 ms | 2.0 ms / 4.0 ms | 1.50× |") for line in table)


def test_one_setting_says_there_was_nothing_to_compare(monkeypatch):
    monkeypatch.setattr(summary, "records", lambda name: [record("as set", "SkylakeX", 1e-3)] if name == "blas_kernel" else [])
    assert "were not set on its machine" in summary.blas_kernel_lines()[1]


def test_the_record_names_cpu_and_date_when_it_has_them(monkeypatch):
    rows = [record("as set", "Haswell", 3e-3, OPENBLAS_CORETYPE="Haswell"), record("both unset", "SkylakeX", 2e-3)]
    rows[0].update(cpu="AMD EPYC", date="2026-12-03 16:30")
    monkeypatch.setattr(summary, "records", lambda name: rows if name == "blas_kernel" else [])
    assert "its machine (AMD EPYC, 2026-12-03 16:30) sets OPENBLAS_CORETYPE=Haswell." in summary.blas_kernel_lines()[1]


def environment_row(library, **env):
    return {"library": library, "load_averages": [1.0], "environment": {
        "env": {"OPENBLAS_CORETYPE": None, "OPENBLAS_L2_SIZE": None, **env},
        "blas": [{"internal_api": "openblas", "version": "0.3.31", "architecture": "SkylakeX",
                  "num_threads": 2, "threading_layer": "pthreads"}]}}


def test_environment_line_names_the_variables_set_in_minidl_processes_only(monkeypatch):
    unset = [environment_row("minidl"), environment_row("torch", OPENBLAS_CORETYPE="Haswell")]
    monkeypatch.setattr(summary, "records", lambda name: unset if name == "conv" else [])
    assert "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE were not set in minidl's processes" in summary.environment_lines()[1]
    given = [environment_row("minidl", OPENBLAS_CORETYPE="Haswell", OPENBLAS_L2_SIZE="512")]
    monkeypatch.setattr(summary, "records", lambda name: given if name == "conv" else [])
    assert "minidl's processes ran with OPENBLAS_CORETYPE=Haswell, OPENBLAS_L2_SIZE=512" in summary.environment_lines()[1]


def test_a_worker_that_fails_or_prints_no_json_stops_with_its_command_and_reason():
    import pytest
    with pytest.raises(SystemExit, match=r"failed \(exit 3, 0 lines of output\):\nboom"):
        blas_kernel.run([sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"], {})
    with pytest.raises(SystemExit, match="printed no JSON last"):
        blas_kernel.run([sys.executable, "-c", "print('not json')"], {})
    assert blas_kernel.run([sys.executable, "-c", "print('x'); print('{\"a\": 1}')"], {}) == {"a": 1}
    assert blas_kernel.kernel({"environment": {"blas": [{"architecture": "Haswell"}]}}) == "Haswell"
    assert blas_kernel.kernel({"environment": {"blas": "threadpoolctl not installed"}}) is None


def test_records_are_written_whole_through_a_renamed_temporary_file(tmp_path):
    from benchmarks import _timing
    path = tmp_path / "results" / "x.json"
    _timing.save_records(path, [{"a": 1}])
    _timing.save_records(path, [{"a": 2}, {"b": 3}])
    assert json.loads(path.read_text()) == [{"a": 2}, {"b": 3}]
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.json"]  # no temporary file left behind


def test_with_three_settings_the_ratio_is_against_the_one_without_coretype_alone(monkeypatch):
    rows = [record("as set", "Haswell", 3e-3, OPENBLAS_CORETYPE="Haswell", OPENBLAS_L2_SIZE="512"),
            record("OPENBLAS_CORETYPE unset", "SkylakeX", 2e-3, OPENBLAS_L2_SIZE="512"),
            record("both unset", "SkylakeX", 1e-3)]
    monkeypatch.setattr(summary, "records", lambda name: rows if name == "blas_kernel" else [])
    lines = summary.blas_kernel_lines()
    assert lines[3].endswith("| as set / OPENBLAS_CORETYPE unset, min |")
    assert all(line.endswith("| 1.50× |") for line in lines[5:])
