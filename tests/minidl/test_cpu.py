"""minidl/cpu.py: NumPy's CPU features and the note on OPENBLAS_CORETYPE."""
from __future__ import annotations

import platform

import pytest

from minidl.cpu import coretype_note, cpu_features

AVX512 = {"SSE2": True, "AVX2": True, "AVX512F": True, "AVX512_SKX": True}
AVX2 = {"SSE2": True, "AVX2": True, "AVX512F": False}
ARM = {"NEON": True, "ASIMD": True}


def test_no_note_without_the_variable():
    assert coretype_note({}, AVX512) is None
    assert coretype_note({"OPENBLAS_CORETYPE": "  "}, AVX512) is None


@pytest.mark.parametrize("core", ["Haswell", "ZEN", "sandybridge"])
def test_an_older_core_on_an_avx512_cpu_is_named_with_its_cost(core):
    note = coretype_note({"OPENBLAS_CORETYPE": core}, AVX512)
    assert note.startswith(f"OPENBLAS_CORETYPE={core} is set")
    assert "without AVX-512" in note and "Unset it" in note


@pytest.mark.parametrize("environ, features", [({"OPENBLAS_CORETYPE": "SkylakeX"}, AVX512),
                                               ({"OPENBLAS_CORETYPE": "sapphirerapids"}, AVX512),
                                               ({"OPENBLAS_CORETYPE": "Haswell"}, AVX2),
                                               ({"OPENBLAS_CORETYPE": "Haswell"}, {}),
                                               ({"OPENBLAS_CORETYPE": "NeoverseN1"}, ARM)])
def test_a_core_that_is_not_older_is_only_named(environ, features):
    note = coretype_note(environ, features)
    assert note.startswith(f"OPENBLAS_CORETYPE={environ['OPENBLAS_CORETYPE']} is set")
    assert "AVX-512" not in note


@pytest.mark.parametrize("features", [AVX512, AVX2])
def test_a_name_openblas_does_not_know_on_x86_is_said_to_be_ignored(features):
    note = coretype_note({"OPENBLAS_CORETYPE": "Foo"}, features)
    assert note.startswith("OPENBLAS_CORETYPE=Foo is set, but names no core") and "picks its own" in note


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86-64 feature names")
def test_cpu_features_come_from_numpy_as_booleans():
    features = cpu_features()
    assert "AVX2" in features and "AVX512F" in features
    assert all(isinstance(value, bool) for value in features.values())
