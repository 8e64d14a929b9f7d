"""The array module of an input: numpy, or cupy when the input lives on a GPU.

The audio package never imports minidl and never imports cupy at import time: an array
that is a cupy array can only exist if cupy was already imported by whoever made it, so we
look at the array's type and fetch cupy from ``sys.modules``.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import numpy as np

Array = Any  # numpy.ndarray or cupy.ndarray; shapes are given in docstrings


def array_module(x: object) -> ModuleType:
    """Return cupy if ``x`` is a cupy array, else numpy (lists, scalars, numpy arrays)."""
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(x, cupy.ndarray):
        return cupy
    return np


def to_host(x: Array) -> np.ndarray:
    """A numpy copy (or view) of ``x``, whichever module it lives in."""
    if isinstance(x, np.ndarray):
        return x
    get = getattr(x, "get", None)
    return get() if callable(get) else np.asarray(x)
