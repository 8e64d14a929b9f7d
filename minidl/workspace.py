"""Scratch arrays that the fused ops reuse from one call to the next, instead of allocating anew.

Why: a NumPy array of a few megabytes is not recycled memory. glibc's malloc maps it fresh from
the operating system and, when it is freed, hands the pages back; the next array of that size
starts as untouched pages, and the first write to each 4 KiB page costs a page fault and a
zero-fill. A recurrent step allocates about ten such arrays (gate buffers, ∂z for every time
step, their side-by-side copies), and faulting them in took about 3 ms of a 14 ms LSTM
training step here, more than all of its gate arithmetic. PyTorch keeps freed blocks in a
caching allocator for the same reason; this is the small version of that idea, used by hand:

    buffer = workspace.empty(xp, shape, dtype)   # a free array of this shape and dtype, or a new one
    ...                                          # use it as scratch
    workspace.release(buffer)                    # done: nothing else refers to it

Only arrays that never leave the op may be released: not an output, not an array a view was
taken of and handed out. On CuPy ``empty`` simply allocates, since CuPy's memory pool already
recycles device memory. The pool keeps at most ``LIMIT_BYTES``; past that the oldest arrays are
dropped (freed as usual), so training on many sequence lengths cannot grow it without bound.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from minidl.backend import Array, get_array_module

LIMIT_BYTES = 256 * 2**20
_free: OrderedDict[tuple, list] = OrderedDict()  # (shape, dtype) -> free arrays, oldest key first
_held = {"bytes": 0}


def empty(xp, shape: tuple, dtype) -> Array:
    """An uninitialised array of ``shape`` and ``dtype``: a released one if the pool has it."""
    if xp is not np:
        return xp.empty(shape, dtype=dtype)
    key = (tuple(shape), np.dtype(dtype).str)
    arrays = _free.get(key)
    if not arrays:
        return np.empty(shape, dtype=dtype)
    array = arrays.pop()
    if not arrays:
        del _free[key]
    _held["bytes"] -= array.nbytes
    return array


def empty_like(array: Array) -> Array:
    """``empty`` with the shape and dtype of ``array``."""
    return empty(get_array_module(array), array.shape, array.dtype)


def release(*arrays: Array | None) -> None:
    """Give arrays back for reuse (None is skipped). Each must own its memory (not a view) and
    nothing else may still use it: the next ``empty`` of its shape hands it out again."""
    for array in arrays:
        if array is None or not isinstance(array, np.ndarray):
            continue
        if array.base is not None or not array.flags.c_contiguous:
            raise ValueError(f"workspace.release: expected an array that owns its memory, got a view "
                             f"of shape {array.shape}")
        key = (array.shape, array.dtype.str)
        pooled = _free.setdefault(key, [])
        if any(a is array for a in pooled):
            raise ValueError(f"workspace.release: the array of shape {array.shape} was released twice")
        pooled.append(array)
        _free.move_to_end(key)
        _held["bytes"] += array.nbytes
    while _held["bytes"] > LIMIT_BYTES and _free:
        key, oldest = next(iter(_free.items()))
        _held["bytes"] -= oldest.pop(0).nbytes
        if not oldest:
            del _free[key]


def held_bytes() -> int:
    """How many bytes of released arrays the pool holds now."""
    return _held["bytes"]


def clear() -> None:
    """Drop every pooled array (they are freed as usual)."""
    _free.clear()
    _held["bytes"] = 0

