"""The constants of the MFCC chain and how they are applied.

Constant matrices (window, mel filterbank, DCT, lifter) are built once per parameter set in
NumPy float64 by a builder under functools.lru_cache, then cast once per dtype and array
module by ``constant``; the cached arrays are read-only, never written in place.
``matmul_last`` applies such a matrix along the last axis of a batch of frames.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import lru_cache
from types import ModuleType

import numpy as np

from audio.backend import Array

#: float64 machine epsilon: the floor python_speech_features puts under energies before log
EPS = float(np.finfo(np.float64).eps)


@lru_cache(maxsize=256)
def _cached_constant(xp_name: str, dtype: str, builder: Callable[..., np.ndarray],
                     args: tuple) -> Array:
    host = builder(*args)
    if xp_name == "numpy":
        cast = host.astype(dtype)
        cast.setflags(write=False)
        return cast
    return sys.modules[xp_name].asarray(host, dtype=dtype)  # e.g. cupy: copied to the GPU once


def constant(xp: ModuleType, builder: Callable[..., np.ndarray], args: tuple,
             dtype: np.dtype | type) -> Array:
    """builder(*args), a cached numpy constant, as ``dtype`` in module ``xp``; cached too.

    Args:
        xp: numpy or cupy, the module of the arrays the constant will meet.
        builder: an lru_cached function returning a read-only float64 numpy array.
        args: its arguments, hashable.
        dtype: the dtype of the result.
    Returns:
        The array, read-only when numpy: multiply by it, never write to it.
    """
    return _cached_constant(xp.__name__, np.dtype(dtype).str, builder, args)


def matmul_last(x: Array, matrix: Array) -> Array:
    """x (..., n) @ matrix (n, m) -> (..., m), as one 2-D product.

    numpy's stacked matmul does not reach BLAS for a transposed right operand (such as a
    filterbank's ``weights.T``); one 2-D product over all frames does.
    """
    return (x.reshape(-1, x.shape[-1]) @ matrix).reshape(*x.shape[:-1], matrix.shape[-1])


__all__ = ["EPS", "constant", "matmul_last"]
