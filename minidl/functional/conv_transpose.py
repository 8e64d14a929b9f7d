"""Transposed convolution, channels last, with Keras' kernel layout and output sizes.

A transposed convolution is the input gradient of a convolution run forward: where a
convolution gathers a kernel-sized patch into one output, it scatters one input pixel, times
the kernel, over a kernel-sized patch of the output. So it is a GEMM followed by col2im, and its
backward is im2col followed by GEMMs, the convolution's own steps in the other order
(minidl.functional.conv):

    x (batch, h, w, C)  ──as (N, C)──►  x₂ · W₂ᵀ = col (N, kh·kw·F)  ──col2im──►  ỹ (batch, H̃, W̃, F)
                                                                     ──cut──►  y (batch, out_h, out_w, F)

with N = batch·h·w, W₂ the Keras kernel (kh, kw, F, C) as (kh·kw·F, C), and the full size
H̃ = (h - 1)·sh + (kh - 1)·dh + 1 per axis. Keras' 'padding' and 'output_padding' only choose
which window of ỹ is the output (``transpose_crops``); where that window reaches past ỹ (an
output_padding beyond the full size), the extra rows are zeros (plus the bias).
"""
from __future__ import annotations

from minidl.backend import Array, get_array_module
from minidl.function import Function
from minidl.functional.conv import PADDINGS, check_operands, col2im, im2col, normalize_tuple
from minidl.tensor import Tensor, as_tensor


def transpose_output_length(size: int, kernel_size: int, stride: int, dilation: int, padding: str,
                            output_padding: int | None = None) -> int:
    """Keras' output length of one axis of a transposed convolution.

    With span = (kernel_size - 1)·dilation + 1:
        'valid': (size - 1)·stride + span + output_padding, output_padding defaulting to
                 max(span, stride) - span (so the output tiles the strided input without gaps);
        'same':  size·stride, or (size - 1)·stride + span % 2 + output_padding when it is given.
    """
    span = (kernel_size - 1) * dilation + 1
    if padding == "valid":
        extra = max(span, stride) - span if output_padding is None else output_padding
        return (size - 1) * stride + span + extra
    if output_padding is None:
        return size * stride
    return (size - 1) * stride + span % 2 + output_padding


def transpose_crops(size: int, kernel_size: int, stride: int, dilation: int, padding: str,
                    output_padding: int | None = None) -> tuple[int, int]:
    """(before, after): how much of the full scatter ỹ (length (size - 1)·stride + span) the
    output cuts off at each end; a negative ``after`` means that many zeros added instead.

    'valid' cuts nothing before. 'same' pads the equivalent convolution by pad = stride + span - 2
    (or span + span % 2 - 2 + output_padding when given), ⌈pad / 2⌉ of it before but at most
    span - 1, and a pad p before the equivalent convolution is a cut of span - 1 - p here (Keras'
    JAX rule, which its torch backend reproduces by cropping).
    """
    span = (kernel_size - 1) * dilation + 1
    if padding == "valid":
        before = 0
    else:
        total = stride + span - 2 if output_padding is None else span + span % 2 - 2 + output_padding
        before = span - 1 - min((total + 1) // 2, span - 1)
    full = (size - 1) * stride + span
    return before, full - before - transpose_output_length(size, kernel_size, stride, dilation, padding,
                                                           output_padding)


def shifted(a: Array, shape: tuple, offsets: tuple[int, int]) -> Array:
    """An array of ``shape`` (batch, H, W, F) holding a (batch, h, w, F) moved by ``offsets``:

        out[b, r, c, f] = a[b, r + offsets[0], c + offsets[1], f]  where that index exists, else 0.

    The transposed convolution's cut (offsets = the cuts before) and, with the offsets negated,
    its adjoint, which puts a gradient back into the full frame.
    """
    xp = get_array_module(a)
    out = xp.zeros(shape, dtype=a.dtype)
    source, target = [slice(None)], [slice(None)]
    for offset, have, want in zip(offsets, a.shape[1:3], shape[1:3]):
        start, to = max(offset, 0), max(-offset, 0)
        length = min(have - start, want - to)
        source.append(slice(start, start + length))
        target.append(slice(to, to + length))
    out[tuple(target)] = a[tuple(source)]
    return out


class Conv2DTransposeFunction(Function):
    """2-D transposed convolution, channels last, Keras' kernel (kh, kw, F, C):

        ỹ[b, p·sh + i·dh, q·sw + j·dw, f] = Σ over (p, q, i, j) landing there of Σ_{c<C} x[b, p, q, c] · W[i, j, f, c]
        y[b, r, s, f] = bias[f] + ỹ[b, r + top, s + left, f]   (0 outside ỹ)

    for 0 ≤ r < out_h, 0 ≤ s < out_w; (top, bottom), (left, right) = ``crops`` (transpose_crops).
    It is exactly ∂L/∂x̃ of Conv2DFunction for a convolution with kernel W (F inputs, C outputs)
    and upstream gradient x. Shapes: x (batch, h, w, C), W (kh, kw, F, C), bias (F,) ->
    y (batch, out_h, out_w, F).

    Forward: col = x₂·W₂ᵀ (N, kh·kw·F); ỹ = col2im(col); y = ỹ cut, + bias.
    Backward, with g̃ = ∂L/∂y put back in the full frame (zeros where cut off, the added rows
    dropped) and col(g̃) = im2col(g̃) (N, kh·kw·F), the patch of g̃ each input pixel was spread on:
        ∂L/∂x = col(g̃)·W₂                reshaped to (batch, h, w, C)
        ∂L/∂W = col(g̃)ᵀ·x₂               reshaped to (kh, kw, F, C)
        ∂L/∂bias = Σ over batch and positions of ∂L/∂y
    """

    def __init__(self, strides: tuple[int, int], dilation_rate: tuple[int, int],
                 crops: tuple[tuple[int, int], tuple[int, int]]):
        self.strides, self.dilation_rate, self.crops = strides, dilation_rate, crops

    def forward(self, x: Array, W: Array, bias: Array | None = None) -> Array:
        kh, kw, filters, channels = W.shape
        batch, height, width, _ = x.shape
        self.x_shape, self.W_shape = x.shape, W.shape
        self.x2, self.W2 = x.reshape(-1, channels), W.reshape(-1, channels)
        col = (self.x2 @ self.W2.T).reshape(batch, height, width, kh, kw, filters)
        self.full_shape = (batch,) + tuple((n - 1) * s + (k - 1) * d + 1 for n, k, s, d in
                                           zip((height, width), (kh, kw), self.strides, self.dilation_rate)) + (filters,)
        full = col2im(col, self.full_shape, self.strides, self.dilation_rate)
        (top, bottom), (left, right) = self.crops
        out_shape = (batch, self.full_shape[1] - top - bottom, self.full_shape[2] - left - right, filters)
        y = shifted(full, out_shape, (top, left))
        if bias is not None:
            y += bias
        return y

    def backward(self, gy: Array):
        kh, kw, filters, channels = self.W_shape
        (top, _), (left, _) = self.crops
        g_full = shifted(gy, self.full_shape, (-top, -left))
        # one row per input pixel: the kh·kw·F gradient values its scatter landed on
        col = im2col(g_full, (kh, kw), self.strides, self.dilation_rate).reshape(-1, kh * kw * filters)
        gx = gW = gb = None
        if self.needs_input_grad[0]:
            gx = (col @ self.W2).reshape(self.x_shape)       # y = scatter(x₂·W₂ᵀ)  =>  ∂L/∂x₂ = col(g̃)·W₂
        if self.needs_input_grad[1]:
            gW = (col.T @ self.x2).reshape(self.W_shape)     # ∂L/∂W₂ = col(g̃)ᵀ·x₂
        if len(self.needs_input_grad) == 3 and self.needs_input_grad[2]:
            gb = gy.reshape(-1, filters).sum(axis=0)
        return (gx, gW) if len(self.needs_input_grad) == 2 else (gx, gW, gb)


class Conv1DTransposeFunction(Conv2DTransposeFunction):
    """1-D transposed convolution, channels last: Conv2DTransposeFunction on an image of height 1.

        ỹ[b, t·s + i·d, f] = Σ over (t, i) landing there of Σ_{c<C} x[b, t, c] · W[i, f, c]
        y[b, r, f] = bias[f] + ỹ[b, r + before, f]   (0 outside ỹ)

    Shapes: x (batch, steps, C), W (k, F, C), bias (F,) -> y (batch, out_steps, F).
    """

    def __init__(self, stride: int, dilation_rate: int, crops: tuple[int, int]):
        super().__init__((1, stride), (1, dilation_rate), ((0, 0), crops))

    def forward(self, x, W, bias=None):
        return super().forward(x[:, None], W[None], bias)[:, 0]

    def backward(self, gy):
        gx, gW, *gb = super().backward(gy[:, None])
        return (None if gx is None else gx[:, 0], None if gW is None else gW[0], *gb)


# --- public functions ----------------------------------------------------------------------------
def _crops(where: str, spatial: tuple, kernel: tuple, strides: tuple, dilation: tuple, padding: str,
           output_padding) -> tuple[tuple[int, int], ...]:
    """Checked arguments -> the (before, after) cuts of each spatial axis."""
    if padding not in PADDINGS:
        raise ValueError(f"{where}: padding must be 'valid' or 'same', got {padding!r}")
    rank = len(spatial)
    if output_padding is None:
        extras = (None,) * rank
    else:
        extras = (output_padding,) * rank if isinstance(output_padding, int) else tuple(output_padding)
        if len(extras) != rank or not all(isinstance(e, int) and not isinstance(e, bool) and e >= 0 for e in extras):
            raise ValueError(f"{where}: output_padding must be None, an int or {rank} ints >= 0, "
                             f"got {output_padding!r}")
        if any(e >= s for e, s in zip(extras, strides)):
            raise ValueError(f"{where}: output_padding {output_padding!r} must be less than strides "
                             f"{strides} on every axis (as in Keras)")
    crops = []
    for axis, (n, k, s, d, extra) in enumerate(zip(spatial, kernel, strides, dilation, extras)):
        if transpose_output_length(n, k, s, d, padding, extra) < 1:
            raise ValueError(f"{where}: spatial axis {axis} of length {n} gives an empty output with kernel "
                             f"size {k}, stride {s}, padding {padding!r} and output_padding {extra}; "
                             f"use a larger output_padding or padding='valid'")
        crops.append(transpose_crops(n, k, s, d, padding, extra))
    return tuple(crops)


def conv2d_transpose(x, kernel, bias=None, strides=1, padding: str = "valid", output_padding=None,
                     dilation_rate=1) -> Tensor:
    """2-D transposed convolution of x (batch, h, w, C) with a Keras kernel (kh, kw, F, C) (+ bias (F,)).

    Args:
        strides, dilation_rate: an int or (sh, sw), (dh, dw). Keras' layer refuses both > 1 at
            once; the math here does not need that.
        padding: 'valid' or 'same'; output_padding: None, an int or (ph, pw), each < its stride.
            Output size per axis: see transpose_output_length ('same' without output_padding
            gives h·sh).
    Returns:
        (batch, out_h, out_w, F). See Conv2DTransposeFunction for the sum and its gradients.
    """
    x, kernel = as_tensor(x), as_tensor(kernel)
    where = "conv2d_transpose"
    strides = normalize_tuple(strides, 2, "strides", where)
    dilation = normalize_tuple(dilation_rate, 2, "dilation_rate", where)
    check_operands(where, x, kernel, "(batch, height, width, channels)", "(kh, kw, filters, channels)", 3,
                   " (its last axis)")
    crops = _crops(where, x.shape[1:3], kernel.shape[:2], strides, dilation, padding, output_padding)
    function = Conv2DTransposeFunction(strides, dilation, crops)
    return function.apply(x, kernel) if bias is None else function.apply(x, kernel, bias)


def conv1d_transpose(x, kernel, bias=None, strides: int = 1, padding: str = "valid", output_padding=None,
                     dilation_rate: int = 1) -> Tensor:
    """1-D transposed convolution of x (batch, steps, C) with a Keras kernel (k, F, C) (+ bias (F,)).

    Args:
        strides, dilation_rate: int (or a 1-tuple). padding: 'valid' or 'same'.
        output_padding: None or an int < strides. See transpose_output_length for the length.
    Returns:
        (batch, out_steps, F). See Conv1DTransposeFunction.
    """
    x, kernel = as_tensor(x), as_tensor(kernel)
    where = "conv1d_transpose"
    (stride,) = normalize_tuple(strides, 1, "strides", where)
    (dilation,) = normalize_tuple(dilation_rate, 1, "dilation_rate", where)
    check_operands(where, x, kernel, "(batch, steps, channels)", "(k, filters, channels)", 2, " (its last axis)")
    if isinstance(output_padding, (tuple, list)) and len(output_padding) == 1:
        output_padding = output_padding[0]
    (crops,) = _crops(where, x.shape[1:2], kernel.shape[:1], (stride,), (dilation,), padding, output_padding)
    function = Conv1DTransposeFunction(stride, dilation, crops)
    return function.apply(x, kernel) if bias is None else function.apply(x, kernel, bias)
