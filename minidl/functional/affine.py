"""The affine map of a Dense layer as one fused Function."""
from __future__ import annotations

from minidl.function import Function
from minidl.tensor import Tensor


class Affine(Function):
    """y = x·W + b over the last axis of x, any leading axes.

    Shapes: x (..., in), W (in, out), b (out,) -> y (..., out). Leading axes are flattened so
    the whole batch is one GEMM.
    Backward (x₂ = x as (n, in), g₂ = ∂L/∂y as (n, out)):
        ∂L/∂x = g₂ · Wᵀ,   ∂L/∂W = x₂ᵀ · g₂,   ∂L/∂b = Σ_n g₂
    """

    def forward(self, x, W, b=None):
        self.x2 = x.reshape(-1, x.shape[-1])
        self.W, self.x_shape = W, x.shape
        y = self.x2 @ W
        if b is not None:
            y += b
        return y.reshape(x.shape[:-1] + (W.shape[1],))

    def backward(self, gy):
        g2 = gy.reshape(-1, gy.shape[-1])
        gx = (g2 @ self.W.T).reshape(self.x_shape) if self.needs_input_grad[0] else None
        gW = self.x2.T @ g2 if self.needs_input_grad[1] else None
        if len(self.needs_input_grad) == 2:
            return gx, gW
        gb = g2.sum(axis=0) if self.needs_input_grad[2] else None
        return gx, gW, gb


def affine(x, W, b=None) -> Tensor:
    """x·W + b over the last axis; see Affine for the gradients."""
    return Affine().apply(x, W) if b is None else Affine().apply(x, W, b)
