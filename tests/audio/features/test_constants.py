"""audio.features.constants: constants built once, cast once, read-only; matmul_last."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from audio.features.constants import constant, matmul_last

calls = []


@lru_cache(maxsize=4)
def _ramp(n: int) -> np.ndarray:
    calls.append(n)
    ramp = np.arange(n, dtype=np.float64)
    ramp.setflags(write=False)
    return ramp


def test_constant_is_built_once_and_cast_once_per_dtype():
    first = constant(np, _ramp, (5,), np.float32)
    assert first.dtype == np.float32 and constant(np, _ramp, (5,), np.float32) is first
    assert constant(np, _ramp, (5,), np.float64).dtype == np.float64
    assert calls.count(5) == 1
    with pytest.raises(ValueError, match="read-only"):
        first[0] = 1.0


def test_matmul_last_is_a_matmul_over_the_last_axis():
    rng = np.random.default_rng(0)
    x, matrix = rng.normal(size=(2, 3, 4)), rng.normal(size=(5, 4))
    np.testing.assert_allclose(matmul_last(x, matrix.T), x @ matrix.T, rtol=1e-12)
    assert matmul_last(x[0], matrix.T).shape == (3, 5)
