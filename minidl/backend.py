"""Which array module runs: NumPy, or CuPy on a GPU; the default float type; device moves.

Ops never pick a module themselves: they call ``get_array_module(*arrays)`` and get NumPy or CuPy
from the data, so one body serves both (Chainer's ``xp`` idiom). Only this module imports cupy,
and only when asked for it.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

Array = Any  # numpy.ndarray or cupy.ndarray

_state = {"name": os.environ.get("MINIDL_BACKEND", "numpy").lower(), "floatx": "float32"}


class BackendError(RuntimeError):
    """CuPy was asked for, but it is not installed or no GPU is visible."""


def _import_cupy():
    try:
        import cupy  # noqa: PLC0415 (imported only when asked for)
    except ImportError as error:
        raise BackendError("the cupy backend needs CuPy: pip install 'minidl[gpu]' "
                           "(cupy-cuda12x), on a machine with an NVIDIA GPU") from error
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDA driver missing or broken
        raise BackendError(f"CuPy is installed but no CUDA GPU is usable ({error})") from error
    if count == 0:
        raise BackendError("CuPy is installed but no CUDA GPU is visible")
    return cupy


def use(name: str) -> None:
    """Create new tensors and layer weights with ``name``: "numpy" or "cupy" (also "gpu", "cpu")."""
    name = {"cpu": "numpy", "gpu": "cupy", "cuda": "cupy"}.get(name.lower(), name.lower())
    if name not in ("numpy", "cupy"):
        raise ValueError(f"backend.use: expected 'numpy' or 'cupy', got {name!r}")
    if name == "cupy":
        _import_cupy()
    _state["name"] = name


def current() -> str:
    """The name of the backend new arrays are created with: "numpy" or "cupy"."""
    return _state["name"]


def xp_default():
    """The array module new arrays are created with."""
    return _import_cupy() if _state["name"] == "cupy" else np


def is_cupy_array(x: Any) -> bool:
    return type(x).__module__.startswith("cupy")


def get_array_module(*arrays: Any):
    """numpy, or cupy if any argument is a cupy array (Tensors are looked through)."""
    for x in arrays:
        x = getattr(x, "data", x) if type(x).__name__ == "Tensor" else x
        if is_cupy_array(x):
            import cupy  # noqa: PLC0415
            return cupy
    return np


def to_device(x: Array, device: str) -> Array:
    """Copy ``x`` to "cpu" (numpy) or "gpu" (cupy); returns x itself when already there."""
    device = {"numpy": "cpu", "cupy": "gpu", "cuda": "gpu"}.get(device, device)
    if device == "cpu":
        return x.get() if is_cupy_array(x) else np.asarray(x)
    if device == "gpu":
        return _import_cupy().asarray(x)
    raise ValueError(f"to_device: expected 'cpu' or 'gpu', got {device!r}")


def to_numpy(x: Array) -> np.ndarray:
    """A NumPy copy (or view) of x, wherever it lives."""
    return x.get() if is_cupy_array(x) else np.asarray(x)


def set_floatx(dtype: str) -> None:
    """Default float type of new weights and tensors: "float32" (default) or "float64"."""
    if str(dtype) not in ("float16", "float32", "float64"):
        raise ValueError(f"set_floatx: expected 'float16', 'float32' or 'float64', got {dtype!r}")
    _state["floatx"] = str(dtype)


def floatx() -> str:
    """The default float type, as a string ("float32" unless set_floatx changed it)."""
    return _state["floatx"]
