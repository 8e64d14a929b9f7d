"""Pooling, channels last: max and average over windows (1-D, 2-D) and over whole axes (global).

Like im2col, window pooling loops over the offsets (i, j) of the pool window, each time taking
one strided view of the (padded) input for the whole batch (minidl.functional.conv.window):

    y[b, p, q, c] = reduce over i < ph, j < pw of x̃[b, p·sh + i, q·sw + j, c]

with out = (n + before + after - pool) // stride + 1 per axis. 'same' padding is Keras' rule
(out = ceil(n / stride), the extra step at the end); max pooling pads with -inf so the padding
never wins, and average pooling divides by the number of real (unpadded) entries in each window,
as Keras does. A 1-D pool is the 2-D one on an image of height 1.
"""
from __future__ import annotations

from minidl import workspace
from minidl.backend import Array, get_array_module
from minidl.function import Function
from minidl.functional.conv import (axis_padding, normalize_tuple, output_length, pad_spatial, window,
                                    check_fit)
from minidl.functional.reduction import max as reduce_max, mean as reduce_mean, sum as reduce_sum
from minidl.tensor import Tensor, as_tensor


class _Pool2D(Function):
    """What the 2-D pools share: pool size, strides, padding, output size."""

    def __init__(self, pool_size: tuple[int, int], strides: tuple[int, int],
                 pads: tuple[tuple[int, int], tuple[int, int]]):
        self.pool_size, self.strides, self.pads = pool_size, strides, pads

    def _out_shape(self, padded_shape: tuple) -> tuple[int, int]:
        return tuple(output_length(n, k, s, 1, (0, 0))
                     for n, k, s in zip(padded_shape[1:3], self.pool_size, self.strides))

    def _crop(self, gx_padded: Array) -> Array:
        (top, _), (left, _) = self.pads
        return gx_padded[:, top:top + self.x_shape[1], left:left + self.x_shape[2], :]


class MaxPool2DFunction(_Pool2D):
    """y[b, p, q, c] = max over i < ph, j < pw of x̃[b, p·sh + i, q·sw + j, c], x̃ padded with -inf.

    Backward: ∂L/∂y[b, p, q, c] goes whole to the one entry of the window that won, and windows
    that overlap add up. Ties: the first maximum in row-major window order (smallest i, then j)
    wins, as argmax picks it — a subgradient; the tied entries all have the same value, so which
    one receives the gradient is a convention.
    Forward records the winner as its offset k = i·pw + j (``argmax``, one byte per output for
    pools up to 16x16), so backward never reads x again.
    Shapes: x (batch, h, w, c) -> y (batch, out_h, out_w, c).
    """

    def forward(self, x: Array) -> Array:
        xp = get_array_module(x)
        padded = pad_spatial(x, self.pads, -xp.inf)   # x itself for 'valid': no copy
        out_shape = self._out_shape(padded.shape)
        ph, pw = self.pool_size
        first = window(padded, 0, 0, out_shape, self.strides)
        argmax = xp.zeros(first.shape, dtype=xp.uint8 if ph * pw <= 256 else xp.int32)
        above, claim = xp.empty(first.shape, dtype=bool), xp.empty_like(argmax)
        if ph * pw == 1:
            y = first.copy()
        else:  # offsets 0 and 1 in one step, no copy of offset 0 and no claim pass: with the edge-only
            # zeroing in backward, the CNN's two poolings (benchmarks/profile_steps.py's MaxPool2D rows)
            # fwd + bwd went 11.4 -> 8.7 ms thread CPU, best of 50, alternating in one process, load 16
            second = window(padded, 1 // pw, 1 % pw, out_shape, self.strides)
            xp.greater(second, first, out=above)
            y = xp.maximum(first, second)
            xp.copyto(argmax, above)
        for k in range(2, ph * pw):
            entry = window(padded, k // pw, k % pw, out_shape, self.strides)
            # only a strictly greater entry takes over, so a tie stays with the first maximum
            xp.greater(entry, y, out=above)
            xp.maximum(y, entry, out=y)
            # argmax = where(above, k, argmax), as max(argmax, k·above): k exceeds every offset
            # recorded so far; a masked copy (copyto where=) is much slower on random masks (benchmarks/conv.py)
            xp.multiply(above, argmax.dtype.type(k), out=claim)
            xp.maximum(argmax, claim, out=argmax)
        self.argmax, self.x_shape, self.padded_shape = argmax, x.shape, padded.shape
        if padded is not x:
            workspace.release(padded)
        return y

    def backward(self, gy: Array) -> Array:
        # Per offset k, the windows that k won get their gradient at k's entry. One pass to find
        # them (argmax == k) and one to write, on arrays the size of y; finding the winner here by
        # comparing x with y instead took four passes per offset over a strided view of x.
        xp = get_array_module(gy)
        ph, pw = self.pool_size
        won = xp.empty(gy.shape, dtype=bool)
        # windows that do not overlap (stride ≥ pool) own their entries: write, don't add
        overlap = self.strides[0] < ph or self.strides[1] < pw
        if tuple(self.strides) == (ph, pw):  # windows tile the top-left corner: zero only the rest
            gx = xp.empty(self.padded_shape, dtype=gy.dtype)
            gx[:, gy.shape[1] * ph:] = 0
            gx[:, :, gy.shape[2] * pw:] = 0
        else:
            gx = xp.zeros(self.padded_shape, dtype=gy.dtype)
        for k in range(ph * pw):
            xp.equal(self.argmax, k, out=won)
            target = window(gx, k // pw, k % pw, gy.shape[1:3], self.strides)
            if overlap:
                target += gy * won
            else:
                xp.multiply(gy, won, out=target)
        return self._crop(gx)


class AvgPool2DFunction(_Pool2D):
    """y[b, p, q, c] = (1 / n[p, q]) Σ over i < ph, j < pw of x̃[b, p·sh + i, q·sw + j, c],

    x̃ padded with zeros and n[p, q] the number of real (not padding) entries in window (p, q):
    ph·pw everywhere for 'valid', fewer at the borders for 'same' (Keras leaves padding out of
    the count). Backward: every entry of window (p, q) gets ∂L/∂y[b, p, q, c] / n[p, q].
    Shapes: x (batch, h, w, c) -> y (batch, out_h, out_w, c).
    """

    def forward(self, x: Array) -> Array:
        xp = get_array_module(x)
        padded = pad_spatial(x, self.pads)
        out_shape = self._out_shape(padded.shape)
        ph, pw = self.pool_size
        y = xp.zeros((x.shape[0],) + out_shape + (x.shape[3],), dtype=x.dtype)
        for i in range(ph):
            for j in range(pw):
                y += window(padded, i, j, out_shape, self.strides)
        if any(p for pair in self.pads for p in pair):
            # count the real entries of each window: pool a padded image of ones the same way
            ones = pad_spatial(xp.ones((1,) + x.shape[1:3] + (1,), dtype=x.dtype), self.pads)
            self.count = sum(window(ones, i, j, out_shape, self.strides) for i in range(ph) for j in range(pw))
            workspace.release(ones)
        else:
            self.count = x.dtype.type(ph * pw)
        self.x_shape, self.padded_shape = x.shape, padded.shape
        if padded is not x:
            workspace.release(padded)
        y /= self.count
        return y

    def backward(self, gy: Array) -> Array:
        xp = get_array_module(gy)
        ph, pw = self.pool_size
        share = gy / self.count
        gx = xp.zeros(self.padded_shape, dtype=gy.dtype)
        for i in range(ph):
            for j in range(pw):
                window(gx, i, j, gy.shape[1:3], self.strides)[...] += share
        return self._crop(gx)


class _OneDimensional:
    """A 1-D pool as the 2-D one on an image of height 1: (batch, steps, c) is viewed as
    (batch, 1, steps, c) on the way in and back on the way out (views, no copies)."""

    def __init__(self, pool_size: int, stride: int, pads: tuple[int, int]):
        super().__init__((1, pool_size), (1, stride), ((0, 0), pads))

    def forward(self, x):
        return super().forward(x[:, None])[:, 0]

    def backward(self, gy):
        return super().backward(gy[:, None])[:, 0]


class MaxPool1DFunction(_OneDimensional, MaxPool2DFunction):
    """1-D max pooling, (batch, steps, c) -> (batch, out_steps, c): the 2-D pool at height 1."""


class AvgPool1DFunction(_OneDimensional, AvgPool2DFunction):
    """1-D average pooling, (batch, steps, c) -> (batch, out_steps, c): the 2-D pool at height 1."""


# --- public functions ----------------------------------------------------------------------------
def _pool(kind: str, rank: int, x, pool_size, strides, padding: str) -> Tensor:
    where = f"{kind}_pool{rank}d"
    x = as_tensor(x)
    if x.ndim != rank + 2:
        layout = "(batch, steps, channels)" if rank == 1 else "(batch, height, width, channels)"
        raise ValueError(f"{where}: expected x {layout}, got shape {x.shape}")
    pool_size = normalize_tuple(pool_size, rank, "pool_size", where)
    strides = pool_size if strides is None else normalize_tuple(strides, rank, "strides", where)
    if padding not in ("valid", "same"):
        raise ValueError(f"{where}: padding must be 'valid' or 'same', got {padding!r}")
    spatial = x.shape[1:1 + rank]
    pads = tuple(axis_padding(n, k, s, 1, padding) for n, k, s in zip(spatial, pool_size, strides))
    check_fit(where, spatial, pool_size, strides, (1,) * rank, pads)
    if rank == 1:
        cls = MaxPool1DFunction if kind == "max" else AvgPool1DFunction
        return cls(pool_size[0], strides[0], pads[0]).apply(x)
    cls = MaxPool2DFunction if kind == "max" else AvgPool2DFunction
    return cls(pool_size, strides, pads).apply(x)


def max_pool2d(x, pool_size=2, strides=None, padding: str = "valid") -> Tensor:
    """Max over pool windows of x (batch, h, w, c); strides default to pool_size (Keras)."""
    return _pool("max", 2, x, pool_size, strides, padding)


def avg_pool2d(x, pool_size=2, strides=None, padding: str = "valid") -> Tensor:
    """Mean over pool windows of x (batch, h, w, c), padding left out of the count."""
    return _pool("avg", 2, x, pool_size, strides, padding)


def max_pool1d(x, pool_size=2, strides=None, padding: str = "valid") -> Tensor:
    """Max over pool windows of x (batch, steps, c)."""
    return _pool("max", 1, x, pool_size, strides, padding)


def avg_pool1d(x, pool_size=2, strides=None, padding: str = "valid") -> Tensor:
    """Mean over pool windows of x (batch, steps, c), padding left out of the count."""
    return _pool("avg", 1, x, pool_size, strides, padding)


def global_average_pool(x, rank: int, keepdims: bool = False, mask: Array | None = None) -> Tensor:
    """Mean over the ``rank`` spatial axes of x (batch, ..., c) -> (batch, c).

    With a (batch, steps) bool mask (rank 1): y[b, c] = Σ_t m[b, t]·x[b, t, c] / Σ_t m[b, t],
    the mean over valid steps only, as Keras' GlobalAveragePooling1D.
    """
    x = as_tensor(x)
    axes = tuple(range(1, rank + 1))
    if mask is None:
        return reduce_mean(x, axes, keepdims)
    weights = mask[..., None].astype(x.dtype)
    count = weights.sum(axis=1, keepdims=keepdims)
    return reduce_sum(x * weights, axes, keepdims) / count


def global_max_pool(x, rank: int, keepdims: bool = False, mask: Array | None = None) -> Tensor:
    """Max over the ``rank`` spatial axes of x (batch, ..., c) -> (batch, c).

    With a (batch, steps) bool mask (rank 1) masked steps are set to -inf first, so padding never
    wins. Gradient: to the maximum, ties sharing it (minidl.functional.reduction.Max).
    """
    x = as_tensor(x)
    axes = tuple(range(1, rank + 1))
    if mask is not None:
        xp = get_array_module(x.data)
        x = x + xp.where(mask[..., None], x.dtype.type(0), x.dtype.type(-xp.inf))
    return reduce_max(x, axes, keepdims)
