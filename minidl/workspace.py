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

The pool covers the scratch arrays of a few ops; the outputs and gradients of a step are freed
as usual, and what glibc does with them depends on the history of the process: in one process
it keeps them, in another (the same CNN step through ``Sequential.train_on_batch``) it shrinks
the heap after every step and faults the pages back in on the next, about 3,500 page faults per
step here (and, in one run, a 60-90% longer step; in a run at higher load, no clear difference). So at import this module asks glibc to keep ``TOP_PAD_BYTES`` of
freed memory at the top of the heap (``mallopt(M_TOP_PAD)``, Linux/glibc only), and, since that
switches off glibc's dynamic mmap threshold, to take arrays up to ``MMAP_THRESHOLD_BYTES`` from
the heap (``keep_heap_top``); untouched pages cost no resident memory, and peak RSS grew 7%
(84 -> 90 MiB) in that measurement. Set the environment variable MINIDL_MALLOC_TOP_PAD to a
number of bytes to change the pad, 0 to leave glibc's defaults. Measurements:
benchmarks/steady.py and benchmarks/results/steady.json.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from collections import OrderedDict
from typing import Iterator

import numpy as np

from minidl.backend import Array, get_array_module

LIMIT_BYTES = 256 * 2**20
TOP_PAD_BYTES = 64 * 2**20
MMAP_THRESHOLD_BYTES = 32 * 2**20   # the largest glibc allows, and where its dynamic threshold tops out
_M_TOP_PAD, _M_MMAP_THRESHOLD = -2, -3  # glibc's malloc.h


def keep_heap_top(pad_bytes: int) -> bool:
    """Ask glibc's malloc to keep ``pad_bytes`` of freed memory at the top of the heap instead of
    returning it to the system (and faulting it back in on the next step), and to take arrays of
    up to MMAP_THRESHOLD_BYTES from the heap. True when both are set; False where there is no
    glibc (macOS, Windows, musl) or it refused.

    The second setting is needed because of the first: setting M_TOP_PAD turns off glibc's
    dynamic mmap threshold (mallopt(3)), which otherwise rises to the size of the large arrays a
    program frees; left at its start, 128 KiB, every larger array is a fresh mmap whose pages
    fault in when written. The digits CNN's training step took 5,585 page faults and 39-49 ms
    that way, against 0 and 25-34 ms with the threshold set (benchmarks/steady.py, digits rows)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        padded = bool(libc.mallopt(_M_TOP_PAD, ctypes.c_int(int(pad_bytes))))
        return padded and bool(libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(MMAP_THRESHOLD_BYTES)))
    except (OSError, AttributeError):
        return False


def top_pad_from_environment() -> int:
    """The top pad in bytes: MINIDL_MALLOC_TOP_PAD if set (0: leave glibc alone), else TOP_PAD_BYTES."""
    value = os.environ.get("MINIDL_MALLOC_TOP_PAD", "").strip()
    if not value:
        return TOP_PAD_BYTES
    if not value.isdigit():
        raise ValueError(f"MINIDL_MALLOC_TOP_PAD must be a whole number of bytes (0: glibc's default), got {value!r}")
    return int(value)


if top_pad_from_environment():
    keep_heap_top(min(top_pad_from_environment(), 2**31 - 1))
_free: OrderedDict[tuple, list] = OrderedDict()  # (bytes, dtype) -> free flat buffers, oldest key first
_held = {"bytes": 0}
_keeping = [0]   # open keeping() blocks


def empty(xp, shape: tuple, dtype) -> Array:
    """An uninitialised array of ``shape`` and ``dtype``, on a released buffer of the same size if
    the pool has one (any shape of that many bytes: ∂z of every step can reuse the memory of the
    gates, its side-by-side copy the memory of ∂z)."""
    if xp is not np:
        return xp.empty(shape, dtype=dtype)
    dtype = np.dtype(dtype)
    size = 1
    for n in shape:
        size *= int(n)
    key = (size * dtype.itemsize, dtype.str)
    buffers = _free.get(key)
    if not buffers:
        return np.empty(size, dtype=dtype).reshape(shape)
    flat = buffers.pop()
    if not buffers:
        del _free[key]
    _held["bytes"] -= flat.nbytes
    return flat.reshape(shape)


def empty_like(array: Array) -> Array:
    """``empty`` with the shape and dtype of ``array``."""
    return empty(get_array_module(array), array.shape, array.dtype)


@contextlib.contextmanager
def keeping() -> Iterator[None]:
    """While open, ``release`` gives nothing back: ``Tensor.backward(retain_graph=True)`` runs
    inside it, since the ops' backward passes release what their forward saved (their last use,
    unless the graph is kept for another backward, which would read a buffer handed out again)."""
    _keeping[0] += 1
    try:
        yield
    finally:
        _keeping[0] -= 1


def release(*arrays: Array | None) -> None:
    """Give arrays back for reuse (None, and CuPy arrays, are skipped). Each must be a whole
    buffer: one that ``empty`` returned (or a reshape of it), or an array that owns its memory.
    Nothing else may still use it: the next ``empty`` of its size hands it out again. Inside
    ``keeping()`` it does nothing (the arrays are freed as usual once unreferenced)."""
    if _keeping[0]:
        return
    for array in arrays:
        if array is None or not isinstance(array, np.ndarray):
            continue
        owner = array if array.base is None else array.base
        if owner.base is not None or owner.size != array.size or not owner.flags.c_contiguous:
            raise ValueError(f"workspace.release: expected a whole buffer (from workspace.empty, or an "
                             f"array that owns its memory), got a view of shape {array.shape}")
        key = (owner.nbytes, owner.dtype.str)
        buffers = _free.setdefault(key, [])
        if any(b.ctypes.data == owner.ctypes.data for b in buffers):
            raise ValueError(f"workspace.release: the buffer of shape {array.shape} was released twice")
        buffers.append(owner.reshape(-1))
        _free.move_to_end(key)
        _held["bytes"] += owner.nbytes
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

