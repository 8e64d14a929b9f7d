"""Reductions: sum, mean, max. Their backward spreads ∂L/∂y back over the reduced axes."""
from __future__ import annotations

from minidl.backend import get_array_module
from minidl.function import Function
from minidl.tensor import Tensor, as_tensor


def _keep_shape(shape: tuple, axis) -> tuple:
    """The output shape with the reduced axes kept as 1 (so it broadcasts against x)."""
    if axis is None:
        return (1,) * len(shape)
    axes = {a % len(shape) for a in (axis if isinstance(axis, tuple) else (axis,))}
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    """y = Σ x over ``axis``.  Backward: ∂L/∂x = ∂L/∂y broadcast back to x's shape."""

    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.shape = x.shape
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        xp = get_array_module(gy)
        return xp.broadcast_to(gy.reshape(_keep_shape(self.shape, self.axis)), self.shape)


class Mean(Function):
    """y = (1/n) Σ x over ``axis``, n the number of elements reduced.

    Backward: ∂L/∂x = ∂L/∂y / n, broadcast. An empty reduction gives NaN, as NumPy does.
    """

    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.shape = x.shape
        y = x.mean(axis=self.axis, keepdims=self.keepdims)
        self.count = x.size // y.size if y.size and x.size else 1
        return y

    def backward(self, gy):
        xp = get_array_module(gy)
        return xp.broadcast_to(gy.reshape(_keep_shape(self.shape, self.axis)) / gy.dtype.type(self.count),
                               self.shape)


class Max(Function):
    """y = max x over ``axis``.

    Backward: ∂L/∂y goes to the elements equal to the maximum; ties share it equally, so the
    gradient of the maximum is the same whichever tied element one picks.
    """

    def __init__(self, axis, keepdims):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.x = x
        self.y = x.max(axis=self.axis, keepdims=True)
        return self.y if self.keepdims else self.y.reshape(x.max(axis=self.axis).shape)

    def backward(self, gy):
        winners = self.x == self.y
        share = winners / winners.sum(axis=self.axis, keepdims=True)
        return share.astype(gy.dtype) * gy.reshape(self.y.shape)


def sum(x, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001 (the op's name)
    """Σ x over ``axis`` (an int, a tuple, or None for all)."""
    return Sum(_axis(axis), keepdims).apply(x)


def mean(x, axis=None, keepdims: bool = False) -> Tensor:
    """Mean of x over ``axis``."""
    return Mean(_axis(axis), keepdims).apply(x)


def max(x, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001 (the op's name)
    """Maximum of x over ``axis``; x must not be empty along it."""
    x = as_tensor(x)
    if x.size == 0:
        raise ValueError(f"max: cannot take the maximum of an empty tensor of shape {x.shape}")
    return Max(_axis(axis), keepdims).apply(x)


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis
