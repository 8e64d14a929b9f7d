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
    ∂L/∂x = col2im(g₂·W₂ᵀ)                    (g₂ put back in image order first, zeros where no
                                               window reached; then Conv2DFunction._input_grad)

These are the gradients of the two ops in sequence, ties included: the pool's winner is the
first maximum in window order as in MaxPool2DFunction, and where the ReLU's output ties at 0
both give a zero gradient. The CNN step of benchmarks/conv.py, run through a Sequential, went
from 16.6 to 13.0 ms best of 40 (alternating in one process); benchmarks/profile_steps.py times
its parts.
"""
from __future__ import annotations

from minidl import workspace
from minidl.backend import Array, get_array_module
from minidl.functional.conv import Conv2DFunction, normalize_tuple, output_length, pad_spatial, validate_conv2d
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
        # the pool over contiguous blocks, first maximum wins (as MaxPool2DFunction.forward)
        argmax = xp.zeros((windows, filters), dtype=xp.uint8 if ph * pw <= 256 else xp.int32)
        above, claim = xp.empty((windows, filters), dtype=bool), xp.empty_like(argmax)
        if ph * pw == 1:
            pooled = blocks[0].copy()
        else:   # offsets 0 and 1 in one step: no copy of block 0
            xp.greater(blocks[1], blocks[0], out=above)
            pooled = xp.maximum(blocks[0], blocks[1])
            xp.copyto(argmax, above)
        for k in range(2, ph * pw):
            xp.greater(blocks[k], pooled, out=above)
            xp.maximum(pooled, blocks[k], out=pooled)
            xp.multiply(above, argmax.dtype.type(k), out=claim)
            xp.maximum(argmax, claim, out=argmax)
        if self.relu:
            xp.maximum(pooled, 0, out=pooled)
            self.y = pooled
        self.argmax = argmax
        self.x_shape, self.padded_shape = x.shape, padded.shape
        self.col_shape = (batch, out_h, out_w, kh, kw, channels)
        if self.will_backward():
            self.col = self.col_buffer = buffer
        else:
            workspace.release(buffer)
        return pooled.reshape(batch, rows, cols, filters)

    def backward(self, gy: Array):
        xp = get_array_module(gy)
        (ph, pw), filters = self.pool_size, gy.shape[-1]
        g = gy.reshape(-1, filters)
        masked = None
        if self.relu:
            masked = workspace.empty(xp, g.shape, g.dtype)
            xp.multiply(g, self.y > 0, out=masked)
            g = masked
        g2 = workspace.empty(xp, (ph * pw,) + g.shape, g.dtype)
        won = xp.empty(g.shape, dtype=bool)
        for k in range(ph * pw):
            xp.equal(self.argmax, k, out=won)
            xp.multiply(g, won, out=g2[k])
        g2 = g2.reshape(-1, filters)
        gx = gW = gb = None
        if self.needs_input_grad[0]:
            gx = self._input_grad(self._image_order(g2))
        with_bias = len(self.needs_input_grad) == 3
        if self.needs_input_grad[1] or (with_bias and self.needs_input_grad[2]):
            grad_weights = self.col.T @ g2
            columns = self.W2.shape[0]
            if self.needs_input_grad[1]:
                gW = grad_weights[:columns].reshape(self.col_shape[3:] + (filters,))
            if with_bias and self.needs_input_grad[2]:
                gb = grad_weights[columns]
        workspace.release(self.col_buffer)
        workspace.release(masked)
        workspace.release(g2.reshape((ph * pw,) + g.shape))
        return (gx, gW) if len(self.needs_input_grad) == 2 else (gx, gW, gb)

    def _image_order(self, g2: Array) -> Array:
        """g₂ (ph·pw·windows, F) in pool-offset order -> (batch·out_h·out_w, F) in image order,
        zero at the conv outputs no pool window covers."""
        xp = get_array_module(g2)
        batch, out_h, out_w = self.col_shape[:3]
        (ph, pw), filters = self.pool_size, g2.shape[-1]
        rows, cols = out_h // ph, out_w // pw
        image = xp.empty((batch, out_h, out_w, filters), dtype=g2.dtype)
        image[:, rows * ph:] = 0
        image[:, :, cols * pw:] = 0
        covered = image[:, :rows * ph, :cols * pw].reshape(batch, rows, ph, cols, pw, filters)
        covered.transpose(2, 4, 0, 1, 3, 5)[...] = g2.reshape(ph, pw, batch, rows, cols, filters)
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
