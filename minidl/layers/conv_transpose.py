"""Transposed convolution layers with Keras' names, arguments and layouts: Conv1DTranspose,
Conv2DTranspose.

Inputs are channels last. Kernels are Keras' (k, filters, in_channels) and
(kh, kw, filters, in_channels), the filters before the input channels (the reverse of Conv1D/
Conv2D: the layer runs a convolution's input gradient forward), so
``layer.set_weights(keras_layer.get_weights())`` gives Keras' outputs.
"""
from __future__ import annotations

from minidl.functional.conv import normalize_tuple
from minidl.functional.conv_transpose import conv1d_transpose, conv2d_transpose
from minidl.layers.base import Layer, check_last_axis, check_rank
from minidl.layers.conv import build_conv_weights, conv_options_config, keep_conv_options
from minidl.layers.reshaping import check_channels_last
from minidl.tensor import Tensor


class _ConvTranspose(Layer):
    """What Conv1DTranspose and Conv2DTranspose share: arguments, checks, weights, config."""

    rank = 0
    layout = ""

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid", output_padding=None,
                 data_format: str | None = None, dilation_rate=1, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        where = f"{type(self).__name__} '{self.name}'"
        if not isinstance(filters, int) or isinstance(filters, bool) or filters <= 0:
            raise ValueError(f"{where}: filters must be a positive int, got {filters!r}")
        self.filters = filters
        self.kernel_size = normalize_tuple(kernel_size, self.rank, "kernel_size", where)
        self.strides = normalize_tuple(strides, self.rank, "strides", where)
        self.dilation_rate = normalize_tuple(dilation_rate, self.rank, "dilation_rate", where)
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ValueError(f"{where}: padding must be 'valid' or 'same', got {padding!r}")
        self.padding = padding.lower()
        self.output_padding = None
        if output_padding is not None:
            values = (output_padding,) * self.rank if isinstance(output_padding, int) else tuple(output_padding)
            if len(values) != self.rank or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                                   for v in values):
                raise ValueError(f"{where}: output_padding must be None, an int or {self.rank} ints >= 0, "
                                 f"got {output_padding!r}")
            if any(v >= s for v, s in zip(values, self.strides)):
                raise ValueError(f"{where}: output_padding {values} must be less than strides {self.strides} "
                                 f"on every axis (as in Keras)")
            self.output_padding = values
        check_channels_last(self, data_format)
        self.data_format = data_format
        keep_conv_options(self, activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                          bias_regularizer)

    def build(self, input_shape: tuple) -> None:
        # the filters before the input channels: the reverse of Conv1D/Conv2D's kernel
        build_conv_weights(self, input_shape, lambda channels: self.kernel_size + (self.filters, channels))

    def _check(self, inputs: Tensor) -> None:
        check_rank(self, inputs, self.rank + 2, self.layout)
        check_last_axis(self, inputs, self.input_channels, "input channels")

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding,
                "output_padding": None if self.output_padding is None else list(self.output_padding),
                "data_format": self.data_format, "dilation_rate": list(self.dilation_rate),
                **conv_options_config(self)}


class Conv2DTranspose(_ConvTranspose):
    """2-D transposed convolution, channels last: y = activation(conv2d_transpose(x, W) + b).

    Each input pixel (p, q) adds x[b, p, q, :] · W[i, j]ᵀ to output pixel (p·sh + i·dh - top,
    q·sw + j·dw - left), the transpose of Conv2D's gather (the equations and gradients are in
    minidl.functional.conv_transpose.Conv2DTransposeFunction). Output size per axis, as Keras:
    'valid' (n - 1)·s + max(span, s) (span = (k - 1)·d + 1), 'same' n·s; with output_padding
    given, (n - 1)·s + span + output_padding ('valid') or (n - 1)·s + span % 2 + output_padding
    ('same').

    Weights as Keras: kernel (kh, kw, filters, in_channels), bias (filters,).

    Args:
        filters: int > 0, output channels.
        kernel_size, strides, dilation_rate: an int or two ints (height, width). Keras refuses
            strides > 1 with dilation_rate > 1; minidl computes it.
        padding: 'valid' or 'same'.
        output_padding: None, an int or two ints, each less than its stride: the output rows and
            columns beyond the base size above.
        data_format: None or 'channels_last' (the only layout; 'channels_first' raises
            NotImplementedError).
        activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer:
            as Conv2D.
    Input shape:  (batch, height, width, in_channels)
    Output shape: (batch, out_height, out_width, filters)
    A mask on the input is dropped, as Keras does.
    """

    rank = 2
    layout = "(batch, height, width, channels)"

    def __init__(self, filters: int, kernel_size, strides=(1, 1), padding: str = "valid", **kwargs):
        super().__init__(filters, kernel_size, strides, padding, **kwargs)

    def call(self, inputs: Tensor) -> Tensor:
        self._check(inputs)
        return self.activation(conv2d_transpose(inputs, self.kernel, self.bias, self.strides, self.padding,
                                                self.output_padding, self.dilation_rate))


class Conv1DTranspose(_ConvTranspose):
    """1-D transposed convolution over time, channels last: y = activation(conv1d_transpose(x, W) + b).

    Each input step t adds x[b, t, :] · W[i]ᵀ to output step t·s + i·d - before
    (minidl.functional.conv_transpose.Conv1DTransposeFunction); output lengths as Conv2DTranspose.

    Weights as Keras: kernel (kernel_size, filters, in_channels), bias (filters,).

    Args: as Conv2DTranspose, with single ints.
    Input shape:  (batch, steps, in_channels)
    Output shape: (batch, out_steps, filters)
    A mask on the input is dropped, as Keras does.
    """

    rank = 1
    layout = "(batch, steps, channels)"

    def call(self, inputs: Tensor) -> Tensor:
        self._check(inputs)
        output_padding = None if self.output_padding is None else self.output_padding[0]
        return self.activation(conv1d_transpose(inputs, self.kernel, self.bias, self.strides[0], self.padding,
                                                output_padding, self.dilation_rate[0]))
