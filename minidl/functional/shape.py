"""Ops that move values without changing them: reshape, transpose, indexing, joining, padding."""
from __future__ import annotations

from typing import Sequence

from minidl.backend import get_array_module
from minidl.function import Function
from minidl.tensor import Tensor, as_tensor


class Reshape(Function):
    """y = x with a new shape.  Backward: ∂L/∂y reshaped back to x's shape."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.source = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return gy.reshape(self.source)


class Transpose(Function):
    """y = x with axes permuted.  Backward: ∂L/∂y permuted by the inverse permutation."""

    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        xp = get_array_module(x)
        return xp.transpose(x, self.axes)

    def backward(self, gy):
        xp = get_array_module(gy)
        if self.axes is None:
            return xp.transpose(gy)
        inverse = [0] * len(self.axes)
        for position, axis in enumerate(self.axes):
            inverse[axis % len(self.axes)] = position
        return xp.transpose(gy, inverse)


class GetItem(Function):
    """y = x[index] (slices, integers, integer or bool arrays).

    Backward: zeros like x with ∂L/∂y added at the indexed places. Integer-array indexes may repeat
    an element, so the adding goes through a bincount-style scatter (``_scatter_add``) rather than
    ``x[index] += g``, which would keep only one of the repeats.
    """

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.source_shape, self.source_dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.source_shape, dtype=self.source_dtype)
        if _has_array(self.index):
            _scatter_add(xp, gx, self.index, gy)
        else:
            gx[self.index] = gy
        return gx


def _has_array(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(hasattr(p, "shape") and getattr(p, "dtype", None) is not None
               and p.dtype.kind in "iu" or isinstance(p, list) for p in parts)


def _scatter_add(xp, gx, index, gy):
    """gx[index] += gy, counting repeated indices every time (without np.add.at).

    The flat positions that ``index`` selects are found by indexing an array of positions with
    the same index; bincount then adds every contribution at its position.
    """
    positions = xp.arange(gx.size).reshape(gx.shape)[index]
    gy = xp.broadcast_to(gy, positions.shape)
    flat = xp.bincount(positions.ravel(), weights=gy.ravel().astype("float64"), minlength=gx.size)
    gx += flat.reshape(gx.shape).astype(gx.dtype)


class Concatenate(Function):
    """y = the inputs joined along ``axis``.  Backward: ∂L/∂y cut back into the input pieces."""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        xp = get_array_module(*xs)
        self.sizes = [x.shape[self.axis] for x in xs]
        return xp.concatenate(xs, axis=self.axis)

    def backward(self, gy):
        xp = get_array_module(gy)
        bounds = list(xp.cumsum(xp.asarray(self.sizes))[:-1].tolist())
        return tuple(xp.split(gy, bounds, axis=self.axis))


class Stack(Function):
    """y = the inputs stacked along a new ``axis``.  Backward: ∂L/∂y split along that axis."""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        return get_array_module(*xs).stack(xs, axis=self.axis)

    def backward(self, gy):
        xp = get_array_module(gy)
        return tuple(xp.take(gy, i, axis=self.axis) for i in range(gy.shape[self.axis]))


class Pad(Function):
    """y = x padded with a constant.  Backward: the slice of ∂L/∂y that holds x."""

    def __init__(self, pad_width, value):
        self.pad_width, self.value = pad_width, value

    def forward(self, x):
        xp = get_array_module(x)
        self.window = tuple(slice(before, before + n) for (before, _), n in zip(self.pad_width, x.shape))
        return xp.pad(x, self.pad_width, mode="constant", constant_values=self.value)

    def backward(self, gy):
        return gy[self.window]


def reshape(x, shape: Sequence[int]) -> Tensor:
    """x with a new shape (one axis may be -1)."""
    return Reshape(shape).apply(x)


def transpose(x, axes: Sequence[int] | None = None) -> Tensor:
    """x with axes permuted; reversed when ``axes`` is None."""
    return Transpose(None if axes is None else tuple(axes)).apply(x)


def getitem(x, index) -> Tensor:
    """x[index], differentiable; Tensors inside the index are used as plain arrays."""
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return GetItem(index).apply(x)


def concatenate(xs: Sequence, axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    return Concatenate(axis).apply(*xs)


def stack(xs: Sequence, axis: int = 0) -> Tensor:
    """Stack tensors along a new axis."""
    return Stack(axis).apply(*xs)


def pad(x, pad_width, value: float = 0.0) -> Tensor:
    """Constant padding; ``pad_width`` is one (before, after) pair per axis, as numpy.pad."""
    x = as_tensor(x)
    pad_width = tuple((int(before), int(after)) for before, after in pad_width)
    if len(pad_width) != x.ndim:
        raise ValueError(f"pad: expected {x.ndim} (before, after) pairs for shape {x.shape}, "
                         f"got {len(pad_width)}")
    return Pad(pad_width, value).apply(x)
