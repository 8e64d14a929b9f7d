"""A 2-D convolution (with or without ReLU) and the max pooling after it, as one op.

``Conv2D(activation="relu")`` followed by ``MaxPooling2D`` with strides equal to its pool size
and 'valid' padding is the block of nearly every small CNN (the digits CNN, benchmarks/conv.py).
Run as two ops, the convolution writes its full output y (batch, out_h, out_w, F), the ReLU
passes over it, the pool reads it again through ph·pw strided views, and backward scatters the
pooled gradient into a full-size array and masks it once more. Here the two share their work:

    im2col writes the rows of col in pool-offset order: first every output position (p·ph, q·pw)
    (pool offset (0, 0) of each window), then every (p·ph, q·pw + 1), ... so that

        y₂ = [col, 1]·[W₂; bias]   is (ph·pw, windows, F): one contiguous block per pool offset

    and the pool is an elementwise max over ph·pw contiguous blocks. The ReLU comes after the
    max, on the pooled array (ph·pw times smaller): max and ReLU commute, since
    max_k relu(a_k) = relu(max_k a_k) (ReLU never decreases). Rows of y that no window covers
    (the last out_h mod ph rows and out_w mod pw columns) are never computed.

Gradients, with g = ∂L/∂pooled (windows, F), k* the winning pool offset of each window and
m = pooled before the ReLU:

    g_m  = g ⊙ [relu(m) > 0]                  (just g without the ReLU)
    g₂[k] = g_m ⊙ [k* = k]                    (∂L/∂y₂, block by block; zero where k lost)
    [∂W₂; ∂bias] = [col, 1]ᵀ·g₂               (one GEMM, as Conv2DFunction)
    ∂L/∂x = col2im(g₂·W₂ᵀ)                    (g₂ put back in image order first, over the conv
                                               outputs the windows cover; the others have no
                                               gradient; then Conv2DFunction._input_grad)

Forward keeps, instead of k*, where each offset k took over the running maximum of the offsets
before it, took_k = [y₂[k] > max_{j<k} y₂[j]]; k* is the last k that took over (0 if none), so
backward peels g₂ off from the last offset down: r = g_m; for k = ph·pw - 1 … 1,
g₂[k] = r ⊙ took_k and r ← r - g₂[k]; then g₂[0] = r.

These are the gradients of the two ops in sequence, ties included: the pool's winner is the
first maximum in window order as in MaxPool2DFunction, and where the ReLU's output ties at 0
both give a zero gradient. The CNN step of benchmarks/conv.py, run through a Sequential, went
from 16.6 to 13.0 ms best of 40 (alternating in one process); benchmarks/profile_steps.py times
its parts.
"""
from __future__ import annotations

from typing import Sequence

from minidl import workspace
from minidl.backend import Array, get_array_module
from minidl.functional.conv import (Conv2DFunction, normalize_tuple, output_length, pad_spatial, validate_conv2d,
                                    weights_product)
from minidl.tensor import Tensor


def pooled_patches(padded: Array, kernel_size: tuple[int, int], strides: tuple[int, int],
                   dilation_rate: tuple[int, int], pool_size: tuple[int, int],
                   pooled_shape: tuple[int, int]) -> Array:
    """The receptive fields of the covered conv outputs, grouped by pool offset, as one view.

    Returns a strided view of padded (batch, h, w, C), of shape (ph, pw, batch, PH, PW, kh, kw, C)
    (its entries overlap: read it, never write it):

        view[u, v, b, p, q, i, j, c] = padded[b, (p·ph + u)·sh + i·dh, (q·pw + v)·sw + j·dw, c]

    the patch under conv output (p·ph + u, q·pw + v), the entry (u, v) of pool window (p, q).
    """
    xp = get_array_module(padded)
    (kh, kw), (sh, sw), (dh, dw), (ph, pw), (rows, cols) = (kernel_size, strides, dilation_rate,
                                                            pool_size, pooled_shape)
    s0, s1, s2, s3 = padded.strides
    return xp.lib.stride_tricks.as_strided(
        padded, (ph, pw, padded.shape[0], rows, cols, kh, kw, padded.shape[3]),
        (s1 * sh, s2 * sw, s0, s1 * sh * ph, s2 * sw * pw, s1 * dh, s2 * dw, s3))  # (CuPy's has no writeable=)


def pooled_im2col(padded: Array, kernel_size: tuple[int, int], strides: tuple[int, int],
                  dilation_rate: tuple[int, int], pool_size: tuple[int, int], pooled_shape: tuple[int, int],
                  out: Array) -> Array:
    """Copy ``pooled_patches`` into out (ph·pw·batch·PH·PW, kh·kw·C), a matrix whose rows may be
    longer (a column of ones beside them); returns out. Row order (u, v, b, p, q), columns as im2col."""
    patches = pooled_patches(padded, kernel_size, strides, dilation_rate, pool_size, pooled_shape)
    col = out.reshape(patches.shape)   # a view: whole rows of out
    if padded.shape[3] == 1:   # one copy per kernel offset: inner loops pw·sw apart, not kw values long
        for i in range(kernel_size[0]):   # (0.26 against 0.70 ms for the first conv of benchmarks/conv.py)
            for j in range(kernel_size[1]):
                col[..., i, j, :] = patches[..., i, j, :]
    else:
        col[...] = patches
    return out


# --- the pool: a running maximum over the contiguous blocks, and its gradient -----------------------
def running_max(entries: Sequence[Array], took: Array | None) -> Array:
    """max over ``entries`` (K arrays of one shape), the first maximum winning ties; returns it.

    Writes took[k - 1] = [entries[k] > max(entries[0..k-1])], where offset k took over the
    running maximum (took: bool (K - 1, *shape), None for K = 1): the winner of each position
    is the last k that took over, 0 if none, which ``winners_share`` reads back. Two passes an
    offset; MaxPool2DFunction's stored winner index takes four (a claim pass and a maximum on the
    index) and backward one more per offset to compare it with k. The index stays there: its
    shares go to strided windows of ∂x, which winners_share would read back (backward 1.79
    against 1.30 ms on a (32, 38, 38, 32) input, the first pool of benchmarks/conv.py's CNN
    unfused). Fused, on that CNN's first conv: forward 1.63 -> 1.44 ms, backward 2.35 -> 2.26
    (best of 80, alternating in one process).
    """
    xp = get_array_module(entries[0])
    if len(entries) == 1:
        return entries[0].copy()
    xp.greater(entries[1], entries[0], out=took[0])   # offsets 0 and 1 in one step: no copy of 0
    y = xp.maximum(entries[0], entries[1])
    for k in range(2, len(entries)):
        xp.greater(entries[k], y, out=took[k - 1])   # only a strictly greater entry takes over
        xp.maximum(y, entries[k], out=y)
    return y


def took_buffer(xp, entry: Array, offsets: int) -> Array | None:
    """The (offsets - 1, *entry.shape) bool buffer ``running_max`` writes; None for one offset."""
    return workspace.empty(xp, (offsets - 1,) + entry.shape, bool) if offsets > 1 else None


def winners_share(g: Array, took: Array | None, shares: Array, rest: Array) -> None:
    """Write g ⊙ [winner = k] into shares[k] (shares: (K, *g.shape)), from ``running_max``'s took.

    From the last offset down: shares[k] = r ⊙ took[k - 1], r ← r - shares[k] (starting at
    r = g; exact, as r - r = 0 and r - 0 = r), and shares[0] = the r left. ``rest`` (g's shape)
    holds r; g is only read, unless it is rest itself.
    """
    xp = get_array_module(g)
    source = g
    for k in range(len(shares) - 1, 0, -1):
        xp.multiply(source, took[k - 1], out=shares[k])
        xp.subtract(source, shares[k], out=rest if k > 1 else shares[0])
        source = rest
    if len(shares) == 1:
        xp.copyto(shares[0], g)


class Conv2DMaxPoolFunction(Conv2DFunction):
    """maxpool(act(conv2d(x, W) + bias)), act ReLU or identity, pool strides = pool size, 'valid'.

        y[b, p, q, f] = act(max over u < ph, v < pw of y₂[b, p·ph + u, q·pw + v, f])

    with y₂ the convolution of Conv2DFunction (same strides, dilation and padding of x). See the
    module docstring for the computation and its gradients.
    Shapes: x (batch, h, w, C), W (kh, kw, C, F), bias (F,) -> y (batch, out_h // ph, out_w // pw, F).
    """

    def __init__(self, strides: tuple[int, int], dilation_rate: tuple[int, int],
                 pads: tuple[tuple[int, int], tuple[int, int]], relu: bool, pool_size: tuple[int, int]):
        super().__init__(strides, dilation_rate, pads, relu)
        self.pool_size = pool_size

    def forward(self, x: Array, W: Array, bias: Array | None = None) -> Array:
        xp = get_array_module(x)
        kh, kw, channels, filters = W.shape
        (ph, pw), batch, columns = self.pool_size, x.shape[0], kh * kw * channels
        padded = pad_spatial(x, self.pads)
        out_h, out_w = (output_length(n, k, s, d, (0, 0)) for n, k, s, d in
                        zip(padded.shape[1:3], (kh, kw), self.strides, self.dilation_rate))
        rows, cols = out_h // ph, out_w // pw
        if rows < 1 or cols < 1:
            raise ValueError(f"conv2d_max_pool: the pool {self.pool_size} does not fit the convolution's "
                             f"output of {out_h}x{out_w}")
        windows = batch * rows * cols
        with_bias = bias is not None
        buffer = workspace.empty(xp, (ph * pw * windows, columns + with_bias), x.dtype)
        if with_bias:
            buffer[:, columns] = 1   # the bias rides in the GEMM, as in Conv2DFunction
        pooled_im2col(padded, (kh, kw), self.strides, self.dilation_rate, self.pool_size, (rows, cols),
                      buffer[:, :columns])
        if padded is not x:
            workspace.release(padded)
        self.W2 = W.reshape(-1, filters)
        y2 = buffer @ (xp.concatenate([self.W2, bias[None]]) if with_bias else self.W2)
        blocks = y2.reshape(ph * pw, windows, filters)
        # the pool over contiguous blocks, first maximum wins (as MaxPool2DFunction): took[k - 1]
        # marks where offset k took over the running maximum
        took = took_buffer(xp, blocks[0], ph * pw)
        pooled = running_max(list(blocks), took)
        if self.relu:
            xp.maximum(pooled, 0, out=pooled)
            self.y = pooled
        self.took = took
        self.x_shape, self.padded_shape = x.shape, padded.shape
        self.col_shape = (batch, out_h, out_w, kh, kw, channels)
        if self.will_backward():
            self.col = self.col_buffer = buffer
        else:
            workspace.release(buffer, took)
        return pooled.reshape(batch, rows, cols, filters)

    def backward(self, gy: Array):
        xp = get_array_module(gy)
        (ph, pw), filters = self.pool_size, gy.shape[-1]
        g = gy.reshape(-1, filters)
        rest = workspace.empty(xp, g.shape, g.dtype)
        if self.relu:   # through the ReLU first (rest is scratch until winners_share takes it)
            xp.multiply(g, self.y > 0, out=rest)
            g = rest
        g2 = workspace.empty(xp, (ph * pw,) + g.shape, g.dtype)
        winners_share(g, self.took, g2, rest)   # g₂[k]: the gradient where offset k won
        g2 = g2.reshape(-1, filters)
        gx = gW = gb = None
        if self.needs_input_grad[0]:
            rows, cols = self.col_shape[1] // ph, self.col_shape[2] // pw
            gx = self._input_grad(self._image_order(g2), (rows * ph, cols * pw))
        with_bias = len(self.needs_input_grad) == 3
        if self.needs_input_grad[1] or (with_bias and self.needs_input_grad[2]):
            grad_weights = weights_product(self.col, g2)
            columns = self.W2.shape[0]
            if self.needs_input_grad[1]:
                gW = grad_weights[:columns].reshape(self.col_shape[3:] + (filters,))
            if with_bias and self.needs_input_grad[2]:
                gb = grad_weights[columns]
        workspace.release(self.col_buffer, self.took, rest, g2.reshape((ph * pw,) + g.shape))
        return (gx, gW) if len(self.needs_input_grad) == 2 else (gx, gW, gb)

    def _image_order(self, g2: Array) -> Array:
        """g₂ (ph·pw·windows, F) in pool-offset order -> (batch·rows·ph·cols·pw, F) in image order:
        the conv outputs the pool windows cover, the only ones with a gradient (so the input
        gradient's GEMMs skip the last out_h mod ph rows and out_w mod pw columns: 9,248 -> 8,192
        rows for the second conv of benchmarks/conv.py)."""
        xp = get_array_module(g2)
        batch, out_h, out_w = self.col_shape[:3]
        (ph, pw), filters = self.pool_size, g2.shape[-1]
        rows, cols = out_h // ph, out_w // pw
        image = xp.empty((batch, rows, ph, cols, pw, filters), dtype=g2.dtype)
        image.transpose(2, 4, 0, 1, 3, 5)[...] = g2.reshape(ph, pw, batch, rows, cols, filters)
        return image.reshape(-1, filters)


def conv2d_max_pool(x, kernel, bias=None, strides=1, padding: str = "valid", dilation_rate=1,
                    relu: bool = False, pool_size=2) -> Tensor:
    """max_pool2d(act(conv2d(x, kernel, bias, ...)), pool_size), act = ReLU if ``relu``, as one op.

    Args as minidl.functional.conv.conv2d, and pool_size: an int or (ph, pw); the pool's strides
    are its size and its padding 'valid' (the only pool this op fuses).
    Returns:
        (batch, out_h // ph, out_w // pw, F), equal in value and gradient to the two ops in turn.
    """
    x, kernel, strides, dilation, pads = validate_conv2d(x, kernel, strides, padding, dilation_rate,
                                                         "conv2d_max_pool")
    pool = normalize_tuple(pool_size, 2, "pool_size", "conv2d_max_pool")
    function = Conv2DMaxPoolFunction(strides, dilation, pads, relu, pool)
    return function.apply(x, kernel) if bias is None else function.apply(x, kernel, bias)
