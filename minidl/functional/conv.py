"""Convolution, channels last (Keras' layout), as im2col + one GEMM.

A convolution is a matrix product once every receptive field has been copied out into a row:

    x (batch, height, width, channels)                    kernel W (kh, kw, channels, filters)
      │ im2col: one row per output position,                │ reshape
      ▼ one column per (kernel row, kernel column, channel)  ▼
    col (batch·out_h·out_w, kh·kw·channels)   ·   W₂ (kh·kw·channels, filters)   =   y₂

and y₂ reshaped is y (batch, out_h, out_w, filters). The backward pass is two more products,
∂L/∂W₂ = colᵀ·g₂ and ∂L/∂col = g₂·W₂ᵀ, and col2im adds each column block of ∂L/∂col back where
im2col copied it from. im2col is one copy out of a strided view of x; col2im (and the input
gradient, which adds one (N, C) block per kernel offset) loops over kernel offsets only (kh·kw
iterations, each a strided slice over the whole batch), so the same code runs on NumPy and CuPy
and never needs ``np.add.at``. A 1-D convolution is the 2-D one on an image of height 1.

Padding follows Keras (and TensorFlow): 'valid' pads nothing; 'same' pads so that
out = ceil(n / stride), putting the odd extra row or column at the end; Conv1D's 'causal'
pads (k - 1)·dilation steps at the start only.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from minidl import workspace
from minidl.backend import Array, get_array_module
from minidl.function import Function
from minidl.tensor import Tensor, as_tensor

PADDINGS = ("valid", "same")


# --- sizes and padding ----------------------------------------------------------------------
def same_padding(size: int, kernel_size: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """Keras' 'same' padding of one axis: (before, after), with the extra step after.

    With span = (kernel_size - 1)·dilation + 1, the output has ceil(size / stride) steps and
    total = max((ceil(size / stride) - 1)·stride + span - size, 0) padding, before = total // 2.
    """
    span = (kernel_size - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def axis_padding(size: int, kernel_size: int, stride: int, dilation: int, padding: str) -> tuple[int, int]:
    """(before, after) padding of one axis for padding 'valid', 'same' or 'causal'."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        return same_padding(size, kernel_size, stride, dilation)
    if padding == "causal":
        return (kernel_size - 1) * dilation, 0
    raise ValueError(f"padding must be 'valid', 'same' or 'causal', got {padding!r}")


def output_length(size: int, kernel_size: int, stride: int, dilation: int, pads: tuple[int, int]) -> int:
    """Output steps of one axis: floor((size + before + after - span) / stride) + 1,
    span = (kernel_size - 1)·dilation + 1; 0 or less means the kernel does not fit."""
    span = (kernel_size - 1) * dilation + 1
    return (size + pads[0] + pads[1] - span) // stride + 1


def pad_spatial(x: Array, pads: tuple[tuple[int, int], tuple[int, int]], value: float = 0.0) -> Array:
    """x (batch, h, w, c) with (top, bottom), (left, right) rows/columns of ``value`` added.

    Returns x itself (no copy) when there is nothing to add, else a minidl.workspace buffer
    that the caller may give back (release) once done with it.
    """
    (top, bottom), (left, right) = pads
    if top == bottom == left == right == 0:
        return x
    xp = get_array_module(x)
    batch, height, width, channels = x.shape
    out = workspace.empty(xp, (batch, height + top + bottom, width + left + right, channels), x.dtype)
    out.fill(value)
    out[:, top:top + height, left:left + width, :] = x
    return out


def window(x: Array, i: int, j: int, out_shape: tuple[int, int], strides: tuple[int, int],
           dilation: tuple[int, int] = (1, 1)) -> Array:
    """The strided view of padded x (batch, h, w, c) that kernel offset (i, j) meets:

        window[b, p, q, c] = x[b, i·dh + p·sh, j·dw + q·sw, c],  p < out_h, q < out_w

    Shared by im2col, col2im and pooling: each loops over offsets and takes this view.
    """
    (out_h, out_w), (sh, sw), (dh, dw) = out_shape, strides, dilation
    return x[:, i * dh:i * dh + (out_h - 1) * sh + 1:sh, j * dw:j * dw + (out_w - 1) * sw + 1:sw, :]


# --- im2col / col2im ---------------------------------------------------------------------------
def im2col(x: Array, kernel_size: tuple[int, int], strides: tuple[int, int] = (1, 1),
           dilation_rate: tuple[int, int] = (1, 1), out: Array | None = None) -> Array:
    """Copy every receptive field of an (already padded) image into a row.

    Args:
        x: (batch, height, width, channels), padded as the convolution needs.
        kernel_size: (kh, kw). strides: (sh, sw). dilation_rate: (dh, dw).
    Returns:
        col (batch, out_h, out_w, kh, kw, channels), out = (n - span) // stride + 1 per axis:

            col[b, p, q, i, j, c] = x[b, p·sh + i·dh, q·sw + j·dw, c]

        Reshaped to (batch·out_h·out_w, kh·kw·channels) (a free view), row (b, p, q) holds the
        patch under output position (p, q) of image b, read kernel row by kernel row, each
        kernel position's channels side by side — the order of a Keras kernel (kh, kw, c, f)
        reshaped to (kh·kw·c, f).
    """
    xp = get_array_module(x)
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, strides, dilation_rate
    batch, height, width, channels = x.shape
    out_h = output_length(height, kh, sh, dh, (0, 0))
    out_w = output_length(width, kw, sw, dw, (0, 0))
    # Every patch is already in x: col[b, p, q, i, j, c] sits at byte b·s0 + (p·sh + i·dh)·s1 +
    # (q·sw + j·dw)·s2 + c·s3, so one strided view holds col and one copy writes it. One copy, not
    # kh·kw slices: with dw = 1 the (j, c) axes of the view are contiguous in x, so NumPy copies
    # kw·channels values per inner loop instead of channels (kw times fewer loops).
    s0, s1, s2, s3 = x.strides
    patches = xp.lib.stride_tricks.as_strided(x, (batch, out_h, out_w, kh, kw, channels),
                                              (s0, s1 * sh, s2 * sw, s1 * dh, s2 * dw, s3))
    col = xp.empty(patches.shape, dtype=x.dtype) if out is None else out
    if col.shape != patches.shape:
        raise ValueError(f"im2col: expected out of shape {patches.shape}, got {col.shape}")
    if channels == 1:
        # one channel (a mono spectrogram): the view's inner loops would be only kw values long,
        # while a slice per kernel offset copies out_w values per loop (faster on the Conv1D/CNN steps
        # of benchmarks/conv.py)
        for i in range(kh):
            for j in range(kw):
                col[:, :, :, i, j, :] = patches[:, :, :, i, j, :]
    else:
        col[...] = patches   # the view overlaps itself, so it is only read: col gets each entry once
    return col


def col2im(gcol: Array, padded_shape: tuple, strides: tuple[int, int] = (1, 1),
           dilation_rate: tuple[int, int] = (1, 1)) -> Array:
    """The adjoint of im2col: add each patch entry back to the pixel it was copied from.

    Args:
        gcol: (batch, out_h, out_w, kh, kw, channels), e.g. ∂L/∂col.
        padded_shape: (batch, height, width, channels) of the image im2col read.
    Returns:
        gx (padded_shape): gx[b, y, x, c] = Σ over (p, q, i, j) with p·sh + i·dh = y and
        q·sw + j·dw = x of gcol[b, p, q, i, j, c]. Overlapping patches add up; the loop runs
        over the kh·kw kernel offsets, each adding one strided block.
    """
    xp = get_array_module(gcol)
    batch, out_h, out_w, kh, kw, channels = gcol.shape
    gx = xp.zeros(padded_shape, dtype=gcol.dtype)
    for i in range(kh):
        for j in range(kw):
            window(gx, i, j, (out_h, out_w), strides, dilation_rate)[...] += gcol[:, :, :, i, j, :]
    return gx


def im2col_1d(x: Array, kernel_size: int, stride: int = 1, dilation_rate: int = 1) -> Array:
    """im2col of a sequence: x (batch, steps, channels), padded -> col (batch, out_steps, k, channels),
    col[b, t, i, c] = x[b, t·stride + i·dilation, c]. It is im2col on an image of height 1."""
    col = im2col(x[:, None], (1, kernel_size), (1, stride), (1, dilation_rate))
    return col[:, 0, :, 0]


def col2im_1d(gcol: Array, padded_shape: tuple, stride: int = 1, dilation_rate: int = 1) -> Array:
    """The adjoint of im2col_1d: gcol (batch, out_steps, k, channels) -> gx (padded_shape)."""
    batch, steps, channels = padded_shape
    gx = col2im(gcol[:, None, :, None], (batch, 1, steps, channels), (1, stride), (1, dilation_rate))
    return gx[:, 0]


# --- the weight gradient ------------------------------------------------------------------------
# Row chunks for colᵀ·g₂ hold at most this many multiply-adds (rows · columns · filters): 100³,
# where OpenBLAS's SkylakeX build takes its small-matrix kernel (no packing; its
# sgemm_small_kernel_permit_skylakex.c), which ran the narrow products below twice as fast.
SMALL_PRODUCT = 100 ** 3
MIN_CHUNK_ROWS = 512


def weights_product(col: Array, g2: Array) -> Array:
    """colᵀ·g₂ (columns, F) for col (N, columns) and g₂ (N, F), N being every conv output.

    When col is narrow (the first conv of a CNN: 9 or 10 columns) the GEMM is a sum over tens of
    thousands of rows into a few hundred outputs, which OpenBLAS runs slowly in one call:
    (64,896 x 11)ᵀ·(64,896 x 32), the digits CNN's first conv, took 1.0-1.1 ms with one or two
    threads, and 0.55 ms as 23 products of 2,840 rows added up (best of 40; 1.1 ms again with
    chunks just past SMALL_PRODUCT). For 50,000 rows of an RGB 3x3 im2col (28 columns) and 32
    filters 1.15 -> 0.88 ms, of 10 columns and 64 filters 1.13 -> 0.71; at chunks of 558 rows
    (28 columns, 64 filters) even. On NumPy only; elsewhere one product.
    """
    xp = get_array_module(col)
    rows = SMALL_PRODUCT // max(1, col.shape[1] * g2.shape[1])
    if xp is not np or rows < MIN_CHUNK_ROWS or rows >= col.shape[0]:
        return col.T @ g2
    total = col[:rows].T @ g2[:rows]
    part = xp.empty_like(total)
    for start in range(rows, col.shape[0], rows):
        xp.matmul(col[start:start + rows].T, g2[start:start + rows], out=part)
        total += part
    return total


# --- the fused convolution ------------------------------------------------------------------------
class Conv2DFunction(Function):
    """2-D convolution (cross-correlation, as every framework computes it), channels last.

        y[b, p, q, f] = bias[f] + Σ_{i<kh} Σ_{j<kw} Σ_{c<C} x̃[b, p·sh + i·dh, q·sw + j·dw, c] · W[i, j, c, f]

    for 0 ≤ p < out_h, 0 ≤ q < out_w, where x̃ is x padded by ``pads`` and, per axis,
    out = (n + before + after - ((k - 1)·d + 1)) // s + 1.

    Shapes: x (batch, h, w, C), W (kh, kw, C, F), bias (F,) -> y (batch, out_h, out_w, F).
    Forward: col = im2col(x̃) as (N, K) with N = batch·out_h·out_w, K = kh·kw·C; y₂ = col·W₂ + bias,
    as one GEMM [col, 1]·[W₂; bias]: im2col writes into the first K columns of a buffer whose last
    column holds ones, so the bias costs no pass over y of its own (nor its gradient a sum).
    With ``relu=True`` the ReLU is fused in: y = max(y₂, 0), computed in place, and backward first
    masks the gradient, g₂ = ∂L/∂y ⊙ [y > 0]; this saves a full-size array and a pass each way.
    Backward, with g₂ = ∂L/∂y₂ as (N, F):
        ∂L/∂W = colᵀ·g₂ reshaped to (kh, kw, C, F)
        ∂L/∂x = col2im(g₂·W₂ᵀ), with the padding cut off (computed per kernel offset, see _input_grad)
        ∂L/∂bias = Σ_N g₂        (the last row of [col, 1]ᵀ·g₂)
    """

    def __init__(self, strides: tuple[int, int], dilation_rate: tuple[int, int],
                 pads: tuple[tuple[int, int], tuple[int, int]], relu: bool = False):
        self.strides, self.dilation_rate, self.pads, self.relu = strides, dilation_rate, pads, relu

    def forward(self, x: Array, W: Array, bias: Array | None = None) -> Array:
        xp = get_array_module(x)
        kh, kw, channels, filters = W.shape
        padded = pad_spatial(x, self.pads)
        out_h, out_w = (output_length(n, k, s, d, (0, 0)) for n, k, s, d in
                        zip(padded.shape[1:3], (kh, kw), self.strides, self.dilation_rate))
        # col (kh·kw times the size of x) lives until backward, in a workspace buffer given back
        # there: the next step reuses its memory instead of faulting in fresh pages
        batch, columns = x.shape[0], kh * kw * channels
        col_shape = (batch, out_h, out_w, kh, kw, channels)
        with_bias = bias is not None
        # [col, 1] with a bias (the ones column: the bias rides in the GEMM; adding it afterwards
        # was a pass over y, 0.5 ms of the 40x40 conv's 1.9 ms in benchmarks/profile_steps.py)
        buffer = workspace.empty(xp, (batch * out_h * out_w, columns + with_bias), x.dtype)
        if with_bias:
            buffer[:, columns] = 1
        col = im2col(padded, (kh, kw), self.strides, self.dilation_rate,
                     out=buffer[:, :columns].reshape(col_shape))  # a view: whole rows of the buffer
        if padded is not x:
            workspace.release(padded)
        self.col = buffer
        self.W2 = W.reshape(-1, filters)
        self.x_shape, self.padded_shape, self.col_shape = x.shape, padded.shape, col_shape
        y = buffer @ (xp.concatenate([self.W2, bias[None]]) if with_bias else self.W2)
        if self.relu:
            xp.maximum(y, 0, out=y)
            self.y = y
        if self.will_backward():
            self.col_buffer = buffer
        else:
            workspace.release(buffer)
        return y.reshape(batch, out_h, out_w, filters)

    def backward(self, gy: Array):
        xp = get_array_module(gy)
        g2 = gy.reshape(-1, gy.shape[-1])
        masked = None
        if self.relu:  # through y = max(y₂, 0) first; g₂ never leaves backward, so it is scratch
            masked = workspace.empty(xp, g2.shape, g2.dtype)
            xp.multiply(g2, self.y > 0, out=masked)
            g2 = masked
        gx = gW = gb = None
        if self.needs_input_grad[0]:
            gx = self._input_grad(g2)
        with_bias = len(self.needs_input_grad) == 3
        if self.needs_input_grad[1] or (with_bias and self.needs_input_grad[2]):
            # y₂ = [col, 1]·[W₂; bias]  =>  [∂W₂; ∂bias] = [col, 1]ᵀ·g₂
            grad_weights = weights_product(self.col, g2)
            columns = self.W2.shape[0]
            if self.needs_input_grad[1]:
                gW = grad_weights[:columns].reshape(self.col_shape[3:] + (g2.shape[1],))
            if with_bias and self.needs_input_grad[2]:
                gb = grad_weights[columns]
        workspace.release(self.col_buffer)
        workspace.release(masked)
        return (gx, gW) if len(self.needs_input_grad) == 2 else (gx, gW, gb)

    def _input_grad(self, g2: Array, out_shape: tuple[int, int] | None = None) -> Array:
        """∂L/∂x = col2im(g₂·W₂ᵀ), one kernel offset at a time, with the padding cut off; g₂ is
        (batch·out_h·out_w, F), or the first out_shape rows and columns of the conv output only
        where the rest has no gradient (Conv2DMaxPoolFunction).

        Column block (i, j) of g₂·W₂ᵀ is g₂·W[i, j]ᵀ (N, C), and col2im adds it to window (i, j)
        of the padded gradient. Doing that per offset gives the same sum without the (N, K) ∂L/∂col
        (kh·kw times the size of x): each (N, C) product is added while it is still in cache, and
        it is contiguous, so with stride 1 the add runs along whole rows (out_w·C values) instead
        of C values at a time. Measured on the digits CNN's second conv (batch 32, 39x13x32 -> 64
        filters, one BLAS thread), 8 ms against 12 ms for the GEMM followed by col2im.
        """
        xp = get_array_module(g2)
        batch, out_h, out_w, kh, kw, channels = self.col_shape
        if out_shape is not None:
            out_h, out_w = out_shape
        W = self.W2.reshape(kh, kw, channels, -1)
        gx = xp.zeros(self.padded_shape, dtype=g2.dtype)
        block = xp.empty((g2.shape[0], channels), dtype=g2.dtype)
        for i in range(kh):
            for j in range(kw):
                xp.matmul(g2, W[i, j].T, out=block)
                window(gx, i, j, (out_h, out_w), self.strides, self.dilation_rate)[...] += \
                    block.reshape(batch, out_h, out_w, channels)
        (top, _), (left, _) = self.pads
        return gx[:, top:top + self.x_shape[1], left:left + self.x_shape[2], :]


class Conv1DFunction(Conv2DFunction):
    """1-D convolution, channels last: Conv2DFunction on an image of height 1.

        y[b, t, f] = bias[f] + Σ_{i<k} Σ_{c<C} x̃[b, t·s + i·d, c] · W[i, c, f],  0 ≤ t < out_steps

    Shapes: x (batch, steps, C), W (k, C, F), bias (F,) -> y (batch, out_steps, F). The reshapes
    to and from height 1 are views, so this costs what the 2-D convolution costs.
    """

    def __init__(self, stride: int, dilation_rate: int, pads: tuple[int, int], relu: bool = False):
        super().__init__((1, stride), (1, dilation_rate), ((0, 0), pads), relu)

    def forward(self, x, W, bias=None):
        y = super().forward(x[:, None], W[None], bias)
        return y[:, 0]

    def backward(self, gy):
        gx, gW, *gb = super().backward(gy[:, None])
        return (None if gx is None else gx[:, 0], None if gW is None else gW[0], *gb)


# --- public functions ----------------------------------------------------------------------------
def normalize_tuple(value, rank: int, name: str, where: str) -> tuple[int, ...]:
    """An int or a sequence of ``rank`` ints, all positive, as a tuple; else a clear ValueError."""
    values = (value,) * rank if isinstance(value, int) else tuple(value)
    if len(values) != rank or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{where}: {name} must be an int or {rank} ints, got {value!r}")
    if any(v <= 0 for v in values):
        raise ValueError(f"{where}: {name} must be positive, got {value!r}")
    return values


def check_fit(where: str, shape: tuple, kernel: tuple, strides: tuple, dilation: tuple,
               pads: Sequence[tuple[int, int]]) -> None:
    for axis, (n, k, s, d, p) in enumerate(zip(shape, kernel, strides, dilation, pads)):
        if output_length(n, k, s, d, p) < 1:
            raise ValueError(f"{where}: the kernel spans {(k - 1) * d + 1} steps along spatial axis "
                             f"{axis} but the input has only {n + p[0] + p[1]} there (input shape "
                             f"without batch and channels {tuple(shape)}, padding {list(pads)}); use "
                             f"padding='same' or a smaller kernel_size/dilation_rate")


def check_operands(where: str, x: Tensor, kernel: Tensor, x_layout: str, kernel_layout: str,
                   channel_axis: int, axis_note: str = "") -> None:
    """A clear ValueError unless x and kernel have the ranks their layouts name (e.g.
    "(batch, steps, channels)", "(k, channels, filters)") and x's last axis, its channels, has
    the length of the kernel's ``channel_axis`` (``axis_note`` says which axis that is)."""
    if x.ndim != x_layout.count(",") + 1 or kernel.ndim != kernel_layout.count(",") + 1:
        raise ValueError(f"{where}: expected x {x_layout} and kernel {kernel_layout}, got shapes {x.shape} "
                         f"and {kernel.shape}")
    if x.shape[-1] != kernel.shape[channel_axis]:
        raise ValueError(f"{where}: the kernel {kernel.shape} expects {kernel.shape[channel_axis]} input channels"
                         f"{axis_note}, x {x.shape} has {x.shape[-1]}")


def validate_conv2d(x, kernel, strides, padding: str, dilation_rate, where: str):
    """conv2d's arguments checked, with clear errors: (x, kernel) as Tensors, strides and
    dilation as pairs, and the ((top, bottom), (left, right)) padding of x."""
    x, kernel = as_tensor(x), as_tensor(kernel)
    strides = normalize_tuple(strides, 2, "strides", where)
    dilation = normalize_tuple(dilation_rate, 2, "dilation_rate", where)
    check_operands(where, x, kernel, "(batch, height, width, channels)", "(kh, kw, channels, filters)", 2)
    if padding not in PADDINGS:
        raise ValueError(f"{where}: padding must be 'valid' or 'same', got {padding!r}")
    pads = tuple(axis_padding(n, k, s, d, padding)
                 for n, k, s, d in zip(x.shape[1:3], kernel.shape[:2], strides, dilation))
    check_fit(where, x.shape[1:3], kernel.shape[:2], strides, dilation, pads)
    return x, kernel, strides, dilation, pads


def conv2d(x, kernel, bias=None, strides=1, padding: str = "valid", dilation_rate=1,
           relu: bool = False) -> Tensor:
    """2-D convolution of x (batch, h, w, C) with kernel (kh, kw, C, F) (+ bias (F,)), channels last.

    Args:
        strides, dilation_rate: an int or (sh, sw), (dh, dw); Keras does not allow both > 1 at once
            but the math here does.
        padding: 'valid' or 'same' (Keras' rule: out = ceil(n / stride), extra padding at the end).
        relu: apply max(·, 0) inside the op (what Conv2D(activation="relu") does).
    Returns:
        (batch, out_h, out_w, F). See Conv2DFunction for the sum and its gradients.
    """
    x, kernel, strides, dilation, pads = validate_conv2d(x, kernel, strides, padding, dilation_rate, "conv2d")
    function = Conv2DFunction(strides, dilation, pads, relu)
    return function.apply(x, kernel) if bias is None else function.apply(x, kernel, bias)


def conv1d(x, kernel, bias=None, strides: int = 1, padding: str = "valid", dilation_rate: int = 1,
           relu: bool = False) -> Tensor:
    """1-D convolution of x (batch, steps, C) with kernel (k, C, F) (+ bias (F,)), channels last.

    Args:
        strides, dilation_rate: int (or a 1-tuple).
        padding: 'valid', 'same' (out = ceil(steps / stride)) or 'causal' ((k - 1)·dilation
            zeros before the first step, so y[t] sees no input after step t·stride).
        relu: apply max(·, 0) inside the op.
    Returns:
        (batch, out_steps, F). See Conv1DFunction.
    """
    x, kernel = as_tensor(x), as_tensor(kernel)
    (stride,) = normalize_tuple(strides, 1, "strides", "conv1d")
    (dilation,) = normalize_tuple(dilation_rate, 1, "dilation_rate", "conv1d")
    check_operands("conv1d", x, kernel, "(batch, steps, channels)", "(k, channels, filters)", 1)
    if padding not in ("valid", "same", "causal"):
        raise ValueError(f"conv1d: padding must be 'valid', 'same' or 'causal', got {padding!r}")
    pads = axis_padding(x.shape[1], kernel.shape[0], stride, dilation, padding)
    check_fit("conv1d", x.shape[1:2], kernel.shape[:1], (stride,), (dilation,), (pads,))
    function = Conv1DFunction(stride, dilation, pads, relu)
    return function.apply(x, kernel) if bias is None else function.apply(x, kernel, bias)
