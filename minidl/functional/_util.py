"""Small helpers the ops share: summing a broadcast gradient back, pairing operands."""
from __future__ import annotations

from numbers import Number

from minidl.backend import Array, get_array_module
from minidl.tensor import Tensor, as_tensor


def sum_to(gy: Array, shape: tuple) -> Array:
    """Sum ``gy`` over the axes that broadcasting added or stretched, giving ``shape``.

    The backward of every broadcasting op: if x of shape (3, 1) met (2, 3, 4), ∂L/∂x is ∂L/∂y
    summed over axis 0 (added) and axis 2 (stretched from 1).
    """
    if tuple(gy.shape) == tuple(shape):
        return gy
    lead = gy.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and gy.shape[lead + i] != 1)
    out = gy.sum(axis=axes, keepdims=True)
    return out.reshape(shape) if lead else out


def pair(a, b) -> tuple[Tensor, Tensor]:
    """Both operands as Tensors; a Python number takes the other operand's dtype.

    Without this, ``x * 2`` on a float32 x would meet an int64 array and silently give float64.
    """
    if isinstance(a, Number) and isinstance(b, Tensor):
        xp = get_array_module(b.data)
        return Tensor(xp.asarray(a, dtype=b.dtype)), b
    if isinstance(b, Number) and isinstance(a, Tensor):
        xp = get_array_module(a.data)
        return a, Tensor(xp.asarray(b, dtype=a.dtype))
    return as_tensor(a), as_tensor(b)
