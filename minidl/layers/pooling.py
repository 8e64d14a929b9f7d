"""Pooling layers with Keras' names and defaults, channels last.

MaxPooling1D/2D and AveragePooling1D/2D pool over windows (strides default to pool_size);
GlobalAveragePooling1D/2D and GlobalMaxPooling1D/2D pool over all steps or pixels. The math is
in minidl.functional.pooling.
"""
from __future__ import annotations

from minidl.functional.conv import axis_padding, normalize_tuple, output_length
from minidl.functional.pooling import (avg_pool1d, avg_pool2d, global_average_pool, global_max_pool,
                                       max_pool1d, max_pool2d)
from minidl.layers.base import Layer, check_rank
from minidl.functional.conv_pool import conv2d_max_pool
from minidl.layers.conv import Conv2D, time_mask
from minidl.tensor import Tensor


def _check_data_format(layer: Layer, data_format) -> None:
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{type(layer).__name__} '{layer.name}': only data_format='channels_last' is "
                         f"supported, got {data_format!r}")


class _Pooling(Layer):
    rank = 0
    layout = ""
    pool = None

    def __init__(self, pool_size=2, strides=None, padding: str = "valid", data_format: str | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        where = f"{type(self).__name__} '{self.name}'"
        self.pool_size = normalize_tuple(pool_size, self.rank, "pool_size", where)
        self.strides = self.pool_size if strides is None else normalize_tuple(strides, self.rank, "strides", where)
        self._strides_arg = None if strides is None else self.strides
        if padding not in ("valid", "same"):
            raise ValueError(f"{where}: padding must be 'valid' or 'same', got {padding!r}")
        _check_data_format(self, data_format)
        self.padding, self.data_format = padding, data_format

    def call(self, inputs: Tensor) -> Tensor:
        check_rank(self, inputs, self.rank + 2, self.layout)
        return type(self).pool(inputs, self.pool_size, self.strides, self.padding)

    def get_config(self) -> dict:
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": None if self._strides_arg is None else list(self._strides_arg),
                "padding": self.padding, "data_format": self.data_format}


class _Pooling1D(_Pooling):
    """Pooling along time passes a mask on, as Conv1D does: output step t is valid when input
    step t·stride is (valid lengths become ceil(length / stride) for a right-padded batch).
    Keras drops the mask here; we keep it so a pooled front end can feed a masked RNN."""

    rank = 1
    layout = "(batch, steps, channels)"

    def __init__(self, pool_size=2, strides=None, padding: str = "valid", data_format: str | None = None,
                 **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)
        self.supports_masking = True

    def call(self, inputs: Tensor) -> Tensor:
        check_rank(self, inputs, 3, self.layout)
        return type(self).pool(inputs, self.pool_size[0], self.strides[0], self.padding)

    def compute_mask(self, inputs: Tensor, mask):
        if mask is None:
            return None
        steps = inputs.shape[1]
        pads = axis_padding(steps, self.pool_size[0], self.strides[0], 1, self.padding)
        return time_mask(mask, self.strides[0], output_length(steps, self.pool_size[0], self.strides[0], 1, pads))


class MaxPooling2D(_Pooling):
    """y[b, p, q, c] = max over i < ph, j < pw of x[b, p·sh + i, q·sw + j, c] ('same': padding never wins).

    Args:
        pool_size: int or (ph, pw), default 2. strides: int, pair or None (= pool_size).
        padding: 'valid' (out = (n - pool) // stride + 1) or 'same' (out = ceil(n / stride)).
        data_format: None or 'channels_last'.
    Input shape: (batch, h, w, c). Output shape: (batch, out_h, out_w, c).
    """

    rank, layout, pool = 2, "(batch, height, width, channels)", staticmethod(max_pool2d)

    def absorbs(self, layer: Layer) -> bool:
        """Whether ``call_absorbing`` may run ``layer`` and this pool as one op: ``layer`` a Conv2D
        with a ReLU or no activation, this pool 'valid' with strides equal to its size, one dtype.
        Both must be the classes themselves, with no ``call`` of their own (a subclass or a patched
        instance computes something else). A model's graph asks this of a pool whose input only
        that convolution's output feeds."""
        plain = all(type(one) is cls and "call" not in vars(one) for one, cls in ((layer, Conv2D),
                                                                                   (self, MaxPooling2D)))
        return (plain and layer.activation_name in (None, "linear", "relu")
                and self.padding == "valid" and self.strides == self.pool_size and layer.dtype == self.dtype)

    def call_absorbing(self, conv: Conv2D, inputs: Tensor) -> Tensor:
        """self(conv(inputs)) as one op (minidl.functional.conv_pool): equal in value and gradient,
        without the convolution's full-size output (the CNN step of benchmarks/conv.py through a
        Sequential: 16.6 -> 13.0 ms best of 40, alternating in one process)."""
        inputs = conv._prepare(inputs)
        conv._check(inputs)
        out_shape = [output_length(n, k, s, d, axis_padding(n, k, s, d, conv.padding)) for n, k, s, d in
                     zip(inputs.shape[1:3], conv.kernel_size, conv.strides, conv.dilation_rate)]
        if any(n < k for n, k in zip(out_shape, self.pool_size)):  # the two ops give the error, then
            return self(conv(inputs))
        return conv2d_max_pool(inputs, conv.kernel, conv.bias, conv.strides, conv.padding, conv.dilation_rate,
                               relu=conv.activation_name == "relu", pool_size=self.pool_size)


class AveragePooling2D(_Pooling):
    """y[b, p, q, c] = mean over the real entries of the window at (p·sh, q·sw) ('same' padding is
    left out of the count, as Keras on TensorFlow and JAX; Keras' torch backend before
    keras-team/keras#23233 replicated edge values where 'same' padding is uneven, and differs
    there). Args and shapes as MaxPooling2D."""

    rank, layout, pool = 2, "(batch, height, width, channels)", staticmethod(avg_pool2d)


class MaxPooling1D(_Pooling1D):
    """y[b, t, c] = max over i < pool of x[b, t·stride + i, c].

    Args: pool_size int (default 2), strides int or None (= pool_size), padding 'valid' or 'same'.
    Call arguments: mask, passed on (see _Pooling1D).
    Input shape: (batch, steps, c). Output shape: (batch, out_steps, c).
    """

    pool = staticmethod(max_pool1d)


class AveragePooling1D(_Pooling1D):
    """y[b, t, c] = mean over the real entries of x[b, t·stride : t·stride + pool, c]. As MaxPooling1D."""

    pool = staticmethod(avg_pool1d)


class _GlobalPooling(Layer):
    rank = 0
    layout = ""

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs):
        super().__init__(**kwargs)
        _check_data_format(self, data_format)
        self.data_format, self.keepdims = data_format, keepdims

    def get_config(self) -> dict:
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


class GlobalAveragePooling1D(_GlobalPooling):
    """y[b, c] = mean over t of x[b, t, c]; with a mask, over the valid steps only (as Keras).

    Args: keepdims: keep the time axis with length 1. data_format: None or 'channels_last'.
    Input shape: (batch, steps, c). Output shape: (batch, c), or (batch, 1, c) with keepdims.
    The mask is consumed here (the output has no time axis).
    """

    rank, layout = 1, "(batch, steps, channels)"

    def __init__(self, data_format: str | None = None, keepdims: bool = False, **kwargs):
        super().__init__(data_format, keepdims, **kwargs)
        self.supports_masking = True

    def call(self, inputs: Tensor, mask=None) -> Tensor:
        check_rank(self, inputs, 3, self.layout)
        return global_average_pool(inputs, 1, self.keepdims, mask)

    def compute_mask(self, inputs: Tensor, mask):
        return None


class GlobalMaxPooling1D(GlobalAveragePooling1D):
    """y[b, c] = max over t of x[b, t, c]. With a mask, masked steps never win; Keras ignores the
    mask here, so padding (zeros) could be the maximum — with right-padded speech features that
    would pool silence. Shapes as GlobalAveragePooling1D."""

    def call(self, inputs: Tensor, mask=None) -> Tensor:
        check_rank(self, inputs, 3, self.layout)
        return global_max_pool(inputs, 1, self.keepdims, mask)


class GlobalAveragePooling2D(_GlobalPooling):
    """y[b, c] = mean over (h, w) of x[b, h, w, c].

    Input shape: (batch, h, w, c). Output shape: (batch, c), or (batch, 1, 1, c) with keepdims.
    """

    rank, layout = 2, "(batch, height, width, channels)"

    def call(self, inputs: Tensor) -> Tensor:
        check_rank(self, inputs, 4, self.layout)
        return global_average_pool(inputs, 2, self.keepdims)


class GlobalMaxPooling2D(GlobalAveragePooling2D):
    """y[b, c] = max over (h, w) of x[b, h, w, c]. Shapes as GlobalAveragePooling2D."""

    def call(self, inputs: Tensor) -> Tensor:
        check_rank(self, inputs, 4, self.layout)
        return global_max_pool(inputs, 2, self.keepdims)
