"""Inverted dropout: zero each element with probability ``rate`` in training, scale the rest by
1 / (1 - rate), so inference needs no rescaling (Srivastava et al., 2014)."""
from __future__ import annotations

from minidl import random
from minidl.backend import get_array_module
from minidl.function import Function
from minidl.tensor import Tensor, as_tensor


class Dropout(Function):
    """y = x ⊙ m / (1 - rate), m ~ Bernoulli(1 - rate).  Backward: ∂L/∂x = ∂L/∂y ⊙ m / (1 - rate)."""

    def __init__(self, scale_mask):
        self.scale_mask = scale_mask

    def forward(self, x):
        return x * self.scale_mask

    def backward(self, gy):
        return gy * self.scale_mask


def dropout_mask(shape: tuple, rate: float, like):
    """A mask of 0 and 1/(1 - rate) values, drawn from minidl's generator on the CPU."""
    xp = get_array_module(like)
    keep = random.generator().random(shape) >= rate
    return xp.asarray(keep.astype(like.dtype) / like.dtype.type(1 - rate))


def dropout(x, rate: float, training: bool = True, noise_shape: tuple | None = None) -> Tensor:
    """Inverted dropout; the identity when not training or when rate is 0.

    Args:
        x: any shape. rate: fraction dropped, in [0, 1).
        noise_shape: shape of the mask, broadcast against x (e.g. (batch, 1, features) drops
            the same features at every step).
    """
    x = as_tensor(x)
    if not 0 <= rate < 1:
        raise ValueError(f"dropout: rate must be in [0, 1), got {rate}")
    if not training or rate == 0:
        return x
    return Dropout(dropout_mask(noise_shape or x.shape, rate, x.data)).apply(x)
