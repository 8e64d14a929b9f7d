"""Depthwise convolution, channels last (Keras' layout), as im2col + one contraction per channel;
and the separable convolution built from it (depthwise, then a 1×1 convolution).

A depthwise convolution convolves each input channel on its own, with ``depth_multiplier``
kernels per channel, and never mixes channels:

    x (batch, height, width, C)                       kernel W (kh, kw, C, M)
      │ im2col (minidl.functional.conv): one row per     │ reshape
      ▼ output position, kh·kw·C entries                 ▼
    col (N, K, C), N = batch·out_h·out_w, K = kh·kw   ⊗   W₃ (K, C, M)   =   y₃ (N, C, M)

with y₃[n, c, m] = Σ_k col[n, k, c]·W₃[k, c, m]: a matrix product per channel c, done by one
einsum over all channels at once. y₃ reshaped is y (batch, out_h, out_w, C·M): output channel
c·M + m is input channel c's m-th kernel, Keras' order. Padding, strides and dilation follow
Conv2D (minidl.functional.conv: 'valid', or 'same' with out = ceil(n / stride), the odd extra
row or column at the end). A 1-D depthwise convolution is the 2-D one on an image of height 1.
"""
from __future__ import annotations

from minidl import workspace
from minidl.backend import Array, get_array_module
from minidl.function import Function
from minidl.functional.conv import (PADDINGS, axis_padding, check_fit, check_operands, col2im, conv1d, conv2d,
                                    im2col, normalize_tuple, pad_spatial)
from minidl.tensor import Tensor, as_tensor


class DepthwiseConv2DFunction(Function):
    """2-D depthwise convolution (cross-correlation), channels last.

        y[b, p, q, c·M + m] = bias[c·M + m] + Σ_{i<kh} Σ_{j<kw} x̃[b, p·sh + i·dh, q·sw + j·dw, c] · W[i, j, c, m]

    for 0 ≤ p < out_h, 0 ≤ q < out_w, where x̃ is x padded by ``pads`` and, per axis,
    out = (n + before + after - ((k - 1)·d + 1)) // s + 1.

    Shapes: x (batch, h, w, C), W (kh, kw, C, M), bias (C·M,) -> y (batch, out_h, out_w, C·M).
    Forward: col = im2col(x̃) as (N, K, C), N = batch·out_h·out_w, K = kh·kw; W₃ = W as (K, C, M);
    y₃[n, c, m] = Σ_k col[n, k, c]·W₃[k, c, m].
    Backward, with g₃ = ∂L/∂y as (N, C, M):
        ∂L/∂W[k, c, m] = Σ_n col[n, k, c]·g₃[n, c, m]
        ∂L/∂col[n, k, c] = Σ_m g₃[n, c, m]·W₃[k, c, m];  ∂L/∂x = col2im(∂L/∂col), padding cut off
        ∂L/∂bias = Σ_n g₃[n] as (C·M,)
    """

    def __init__(self, strides: tuple[int, int], dilation_rate: tuple[int, int],
                 pads: tuple[tuple[int, int], tuple[int, int]]):
        self.strides, self.dilation_rate, self.pads = strides, dilation_rate, pads

    def forward(self, x: Array, W: Array, bias: Array | None = None) -> Array:
        kh, kw, channels, multiplier = W.shape
        padded = pad_spatial(x, self.pads)
        col = im2col(padded, (kh, kw), self.strides, self.dilation_rate)  # (batch, out_h, out_w, kh, kw, C)
        if padded is not x:  # col holds copies of its values
            workspace.release(padded)
        batch, out_h, out_w = col.shape[:3]
        col3 = col.reshape(-1, kh * kw, channels)  # a view: im2col's output is contiguous
        W3 = W.reshape(kh * kw, channels, multiplier)
        y = get_array_module(x).einsum("nkc,kcm->ncm", col3, W3).reshape(-1, channels * multiplier)
        if bias is not None:
            y += bias
        if self.will_backward():
            self.col3, self.W3 = col3, W3
            self.x_shape, self.padded_shape, self.col_shape = x.shape, padded.shape, col.shape
        return y.reshape(batch, out_h, out_w, channels * multiplier)

    def backward(self, gy: Array):
        xp = get_array_module(gy)
        g3 = gy.reshape(self.col3.shape[0], *self.W3.shape[1:])   # (N, C, M)
        gx = gW = gb = None
        if self.needs_input_grad[0]:
            gcol = xp.einsum("ncm,kcm->nkc", g3, self.W3).reshape(self.col_shape)
            gx = col2im(gcol, self.padded_shape, self.strides, self.dilation_rate)
            (top, _), (left, _) = self.pads
            gx = gx[:, top:top + self.x_shape[1], left:left + self.x_shape[2], :]
        if self.needs_input_grad[1]:
            kh, kw = self.col_shape[3:5]
            gW = xp.einsum("nkc,ncm->kcm", self.col3, g3).reshape((kh, kw) + self.W3.shape[1:])
        if len(self.needs_input_grad) == 3 and self.needs_input_grad[2]:
            gb = g3.reshape(g3.shape[0], -1).sum(axis=0)
        return (gx, gW) if len(self.needs_input_grad) == 2 else (gx, gW, gb)


class DepthwiseConv1DFunction(DepthwiseConv2DFunction):
    """1-D depthwise convolution, channels last: DepthwiseConv2DFunction on an image of height 1.

        y[b, t, c·M + m] = bias[c·M + m] + Σ_{i<k} x̃[b, t·s + i·d, c] · W[i, c, m],  0 ≤ t < out_steps

    Shapes: x (batch, steps, C), W (k, C, M), bias (C·M,) -> y (batch, out_steps, C·M).
    """

    def __init__(self, stride: int, dilation_rate: int, pads: tuple[int, int]):
        super().__init__((1, stride), (1, dilation_rate), ((0, 0), pads))

    def forward(self, x, W, bias=None):
        return super().forward(x[:, None], W[None], bias)[:, 0]

    def backward(self, gy):
        gx, gW, *gb = super().backward(gy[:, None])
        return (None if gx is None else gx[:, 0], None if gW is None else gW[0], *gb)


# --- public functions ----------------------------------------------------------------------------
def _check_depthwise(where: str, x: Tensor, kernel: Tensor, rank: int, layout: str) -> None:
    kernel_layout = f"({'kh, kw' if rank == 2 else 'k'}, channels, depth_multiplier)"
    check_operands(where, x, kernel, layout, kernel_layout, -2)


def _check_bias(where: str, bias, channels: int) -> None:
    if bias is not None and tuple(as_tensor(bias).shape) != (channels,):
        raise ValueError(f"{where}: bias must have shape ({channels},), got {tuple(as_tensor(bias).shape)}")


def depthwise_conv2d(x, kernel, bias=None, strides=1, padding: str = "valid", dilation_rate=1) -> Tensor:
    """Depthwise 2-D convolution of x (batch, h, w, C) with kernel (kh, kw, C, M) (+ bias (C·M,)).

    Args:
        strides, dilation_rate: an int or (sh, sw), (dh, dw).
        padding: 'valid' or 'same' (Keras' rule: out = ceil(n / stride), extra padding at the end).
    Returns:
        (batch, out_h, out_w, C·M), channel c·M + m from input channel c and kernel W[..., c, m].
        See DepthwiseConv2DFunction for the sum and its gradients.
    """
    x, kernel = as_tensor(x), as_tensor(kernel)
    strides = normalize_tuple(strides, 2, "strides", "depthwise_conv2d")
    dilation = normalize_tuple(dilation_rate, 2, "dilation_rate", "depthwise_conv2d")
    _check_depthwise("depthwise_conv2d", x, kernel, 2, "(batch, height, width, channels)")
    _check_bias("depthwise_conv2d", bias, kernel.shape[2] * kernel.shape[3])
    if padding not in PADDINGS:
        raise ValueError(f"depthwise_conv2d: padding must be 'valid' or 'same', got {padding!r}")
    pads = tuple(axis_padding(n, k, s, d, padding)
                 for n, k, s, d in zip(x.shape[1:3], kernel.shape[:2], strides, dilation))
    check_fit("depthwise_conv2d", x.shape[1:3], kernel.shape[:2], strides, dilation, pads)
    function = DepthwiseConv2DFunction(strides, dilation, pads)
    return function.apply(x, kernel) if bias is None else function.apply(x, kernel, bias)


def depthwise_conv1d(x, kernel, bias=None, strides: int = 1, padding: str = "valid",
                     dilation_rate: int = 1) -> Tensor:
    """Depthwise 1-D convolution of x (batch, steps, C) with kernel (k, C, M) (+ bias (C·M,)).

    Args:
        strides, dilation_rate: int (or a 1-tuple).
        padding: 'valid' or 'same' (out_steps = ceil(steps / stride)).
    Returns:
        (batch, out_steps, C·M). See DepthwiseConv1DFunction.
    """
    x, kernel = as_tensor(x), as_tensor(kernel)
    (stride,) = normalize_tuple(strides, 1, "strides", "depthwise_conv1d")
    (dilation,) = normalize_tuple(dilation_rate, 1, "dilation_rate", "depthwise_conv1d")
    _check_depthwise("depthwise_conv1d", x, kernel, 1, "(batch, steps, channels)")
    _check_bias("depthwise_conv1d", bias, kernel.shape[1] * kernel.shape[2])
    if padding not in PADDINGS:
        raise ValueError(f"depthwise_conv1d: padding must be 'valid' or 'same', got {padding!r}")
    pads = axis_padding(x.shape[1], kernel.shape[0], stride, dilation, padding)
    check_fit("depthwise_conv1d", x.shape[1:2], kernel.shape[:1], (stride,), (dilation,), (pads,))
    function = DepthwiseConv1DFunction(stride, dilation, pads)
    return function.apply(x, kernel) if bias is None else function.apply(x, kernel, bias)


def separable_conv2d(x, depthwise_kernel, pointwise_kernel, bias=None, strides=1, padding: str = "valid",
                     dilation_rate=1) -> Tensor:
    """Depthwise separable 2-D convolution: depthwise, then a 1×1 convolution that mixes channels.

        z = depthwise_conv2d(x, D),  y[b, p, q, f] = bias[f] + Σ_{j<C·M} z[b, p, q, j] · P[0, 0, j, f]

    Args:
        x: (batch, h, w, C). depthwise_kernel D: (kh, kw, C, M). pointwise_kernel P: (1, 1, C·M, F).
        bias: (F,) or None. strides, padding, dilation_rate: of the depthwise step, as depthwise_conv2d.
    Returns:
        (batch, out_h, out_w, F). Gradients flow through DepthwiseConv2DFunction and Conv2DFunction.
    """
    depthwise = depthwise_conv2d(x, depthwise_kernel, None, strides, padding, dilation_rate)
    pointwise_kernel = as_tensor(pointwise_kernel)
    if pointwise_kernel.ndim != 4 or pointwise_kernel.shape[:3] != (1, 1, depthwise.shape[-1]):
        raise ValueError(f"separable_conv2d: pointwise_kernel must have shape (1, 1, {depthwise.shape[-1]}, "
                         f"filters), got {pointwise_kernel.shape}")
    return conv2d(depthwise, pointwise_kernel, bias)


def separable_conv1d(x, depthwise_kernel, pointwise_kernel, bias=None, strides: int = 1, padding: str = "valid",
                     dilation_rate: int = 1) -> Tensor:
    """Depthwise separable 1-D convolution: depthwise_conv1d, then a convolution of width 1.

    Args:
        x: (batch, steps, C). depthwise_kernel: (k, C, M). pointwise_kernel: (1, C·M, F). bias: (F,) or None.
    Returns:
        (batch, out_steps, F). See separable_conv2d.
    """
    depthwise = depthwise_conv1d(x, depthwise_kernel, None, strides, padding, dilation_rate)
    pointwise_kernel = as_tensor(pointwise_kernel)
    if pointwise_kernel.ndim != 3 or pointwise_kernel.shape[:2] != (1, depthwise.shape[-1]):
        raise ValueError(f"separable_conv1d: pointwise_kernel must have shape (1, {depthwise.shape[-1]}, "
                         f"filters), got {pointwise_kernel.shape}")
    return conv1d(depthwise, pointwise_kernel, bias)

