"""Depthwise and depthwise-separable convolution layers with Keras 3's names, arguments and
weight layouts: DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D, SeparableConv2D.

Inputs are channels last, as Keras' default. A depthwise layer has Keras' ``kernel``
(k, [k,] in, depth_multiplier) and ``bias`` (in·depth_multiplier,); a separable layer has
``depthwise_kernel`` (k, [k,] in, depth_multiplier), ``pointwise_kernel``
(1, [1,] in·depth_multiplier, filters) and ``bias`` (filters,), so
``layer.set_weights(keras_layer.get_weights())`` gives Keras' outputs. The math is in
minidl.functional.depthwise_conv.
"""
from __future__ import annotations

import minidl.functional as F
from minidl import regularizers
from minidl.functional.conv import axis_padding, normalize_tuple, output_length
from minidl.functional.depthwise_conv import (depthwise_conv1d, depthwise_conv2d, separable_conv1d,
                                              separable_conv2d)
from minidl.layers.base import Layer, check_last_axis, check_rank
from minidl.layers.conv import time_mask
from minidl.layers.core import config_name
from minidl.tensor import Tensor

LAYOUTS = {1: "(batch, steps, channels)", 2: "(batch, height, width, channels)"}


def _positive_int(where: str, name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{where}: {name} must be a positive int, got {value!r}")
    return value


class _DepthwiseBase(Layer):
    """What the four layers share: the window arguments, the checks, the 1-D mask, the config."""

    rank = 0

    def __init__(self, kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate, activation,
                 use_bias, bias_initializer, bias_regularizer, activity_regularizer, constraints: dict, **kwargs):
        super().__init__(**kwargs)
        where = self.where = f"{type(self).__name__} '{self.name}'"
        for argument, value in {"activity_regularizer": activity_regularizer, **constraints}.items():
            if value is not None:
                raise NotImplementedError(f"{where}: {argument} is not supported by minidl; give None")
        self.kernel_size = normalize_tuple(kernel_size, self.rank, "kernel_size", where)
        self.strides = normalize_tuple(strides, self.rank, "strides", where)
        self.dilation_rate = normalize_tuple(dilation_rate, self.rank, "dilation_rate", where)
        self.depth_multiplier = _positive_int(where, "depth_multiplier", depth_multiplier)
        if padding not in ("valid", "same"):
            raise ValueError(f"{where}: padding must be 'valid' or 'same', got {padding!r}")
        if data_format not in (None, "channels_last"):
            raise NotImplementedError(f"{where}: data_format={data_format!r} is not supported by minidl; only "
                                      f"'channels_last' (transpose the input to channels last)")
        self.padding, self.data_format = padding, data_format
        self.activation_name = activation
        self.activation = F.get_activation(activation)
        self.use_bias = bool(use_bias)
        self.bias_initializer = bias_initializer
        self.bias_regularizer = regularizers.get(bias_regularizer)
        # a 1-D layer keeps a (batch, steps) mask as Conv1D does; Keras drops it (see Conv1D)
        self.supports_masking = self.rank == 1

    def _check_input_shape(self, input_shape: tuple) -> int:
        if len(input_shape) != self.rank + 2:
            raise ValueError(f"{self.where} expects a {self.rank + 2}-D input {LAYOUTS[self.rank]}, "
                             f"got shape {tuple(input_shape)}")
        self.input_channels = int(input_shape[-1])
        return self.input_channels

    def _check(self, inputs: Tensor) -> None:
        check_rank(self, inputs, self.rank + 2, LAYOUTS[self.rank])
        check_last_axis(self, inputs, self.input_channels, "input channels")

    def compute_mask(self, inputs: Tensor, mask):
        if mask is None or self.rank != 1:
            return None
        steps = inputs.shape[1]
        k, s, d = self.kernel_size[0], self.strides[0], self.dilation_rate[0]
        return time_mask(mask, s, output_length(steps, k, s, d, axis_padding(steps, k, s, d, self.padding)))

    def get_config(self) -> dict:
        return {**super().get_config(), "kernel_size": list(self.kernel_size), "strides": list(self.strides),
                "padding": self.padding, "depth_multiplier": self.depth_multiplier,
                "data_format": self.data_format, "dilation_rate": list(self.dilation_rate),
                "activation": config_name(self.activation_name), "use_bias": self.use_bias,
                "bias_initializer": config_name(self.bias_initializer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer)}


class _DepthwiseConv(_DepthwiseBase):
    """DepthwiseConv1D and DepthwiseConv2D: y = activation(depthwise_conv(x, kernel) + bias)."""

    def __init__(self, kernel_size, strides=1, padding: str = "valid", depth_multiplier: int = 1,
                 data_format: str | None = None, dilation_rate=1, activation=None, use_bias: bool = True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, depthwise_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate, activation,
                         use_bias, bias_initializer, bias_regularizer, activity_regularizer,
                         {"depthwise_constraint": depthwise_constraint, "bias_constraint": bias_constraint}, **kwargs)
        self.depthwise_initializer = depthwise_initializer
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)

    def build(self, input_shape: tuple) -> None:
        channels = self._check_input_shape(input_shape)
        self.kernel = self.add_weight("kernel", self.kernel_size + (channels, self.depth_multiplier),
                                      self.depthwise_initializer, regularizer=self.depthwise_regularizer)
        self.bias = (self.add_weight("bias", (channels * self.depth_multiplier,), self.bias_initializer,
                                     regularizer=self.bias_regularizer) if self.use_bias else None)

    def call(self, inputs: Tensor) -> Tensor:
        self._check(inputs)
        conv = depthwise_conv2d if self.rank == 2 else depthwise_conv1d
        strides, dilation = (self.strides, self.dilation_rate) if self.rank == 2 else \
            (self.strides[0], self.dilation_rate[0])
        return self.activation(conv(inputs, self.kernel, self.bias, strides, self.padding, dilation))

    def get_config(self) -> dict:
        return {**super().get_config(), "depthwise_initializer": config_name(self.depthwise_initializer),
                "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer)}


class DepthwiseConv2D(_DepthwiseConv):
    """2-D depthwise convolution, channels last: each input channel convolved on its own with
    ``depth_multiplier`` kernels, channels never mixed; y = activation(depthwise_conv2d(x, W) + b).

    Output channel c·M + m (M = depth_multiplier) is input channel c under kernel W[:, :, c, m]; the
    sum, its padding and its gradients are in minidl.functional.depthwise_conv.DepthwiseConv2DFunction.

    Weights as Keras 3: kernel (kh, kw, in_channels, depth_multiplier), bias (in_channels·depth_multiplier,).

    Args:
        kernel_size, strides, dilation_rate: an int or two ints (height, width).
        padding: 'valid' or 'same' (out = ceil(n / stride), the extra row or column at the end).
        depth_multiplier: int > 0, output channels per input channel.
        data_format: None or 'channels_last' (the only layout).
        activation, use_bias, bias_initializer, bias_regularizer: as Conv2D.
        depthwise_initializer, depthwise_regularizer: for the kernel (Keras' names).
        activity_regularizer, depthwise_constraint, bias_constraint: only None (not supported).
    Input shape:  (batch, height, width, in_channels)
    Output shape: (batch, out_height, out_width, in_channels·depth_multiplier)
    """

    rank = 2


class DepthwiseConv1D(_DepthwiseConv):
    """1-D depthwise convolution over time, channels last: each channel filtered on its own by
    ``depth_multiplier`` kernels; y = activation(depthwise_conv1d(x, W) + b). The sum is in
    minidl.functional.depthwise_conv.DepthwiseConv1DFunction.

    Weights as Keras 3: kernel (kernel_size, in_channels, depth_multiplier), bias (in_channels·depth_multiplier,).

    Args: as DepthwiseConv2D, with single ints.
    Call arguments:
        mask: optional bool (batch, steps), passed on as Conv1D does (Keras drops it): output step t
            is valid when input step t·strides is.
    Input shape:  (batch, steps, in_channels)
    Output shape: (batch, out_steps, in_channels·depth_multiplier)
    """

    rank = 1


class _SeparableConv(_DepthwiseBase):
    """SeparableConv1D and SeparableConv2D: y = activation(pointwise(depthwise(x)) + bias)."""

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid", data_format: str | None = None,
                 dilation_rate=1, depth_multiplier: int = 1, activation=None, use_bias: bool = True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, pointwise_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, depthwise_constraint=None,
                 pointwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate, activation,
                         use_bias, bias_initializer, bias_regularizer, activity_regularizer,
                         {"depthwise_constraint": depthwise_constraint, "pointwise_constraint": pointwise_constraint,
                          "bias_constraint": bias_constraint}, **kwargs)
        self.filters = _positive_int(self.where, "filters", filters)
        self.depthwise_initializer, self.pointwise_initializer = depthwise_initializer, pointwise_initializer
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)

    def build(self, input_shape: tuple) -> None:
        channels = self._check_input_shape(input_shape)
        self.depthwise_kernel = self.add_weight("depthwise_kernel", self.kernel_size + (channels, self.depth_multiplier),
                                                self.depthwise_initializer, regularizer=self.depthwise_regularizer)
        self.pointwise_kernel = self.add_weight("pointwise_kernel",
                                                (1,) * self.rank + (channels * self.depth_multiplier, self.filters),
                                                self.pointwise_initializer, regularizer=self.pointwise_regularizer)
        self.bias = (self.add_weight("bias", (self.filters,), self.bias_initializer,
                                     regularizer=self.bias_regularizer) if self.use_bias else None)

    def call(self, inputs: Tensor) -> Tensor:
        self._check(inputs)
        conv = separable_conv2d if self.rank == 2 else separable_conv1d
        strides, dilation = (self.strides, self.dilation_rate) if self.rank == 2 else \
            (self.strides[0], self.dilation_rate[0])
        return self.activation(conv(inputs, self.depthwise_kernel, self.pointwise_kernel, self.bias, strides,
                                    self.padding, dilation))

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters,
                "depthwise_initializer": config_name(self.depthwise_initializer),
                "pointwise_initializer": config_name(self.pointwise_initializer),
                "depthwise_regularizer": regularizers.serialize(self.depthwise_regularizer),
                "pointwise_regularizer": regularizers.serialize(self.pointwise_regularizer)}


class SeparableConv2D(_SeparableConv):
    """Depthwise separable 2-D convolution, channels last: a depthwise convolution (each channel
    on its own, depth_multiplier kernels each), then a 1×1 convolution mixing the channels:

        y = activation(conv2d(depthwise_conv2d(x, D), P) + b)

    (minidl.functional.depthwise_conv.separable_conv2d); kh·kw·C·M + C·M·F weights instead of
    Conv2D's kh·kw·C·F.

    Weights as Keras 3: depthwise_kernel (kh, kw, in_channels, depth_multiplier), pointwise_kernel
    (1, 1, in_channels·depth_multiplier, filters), bias (filters,).

    Args:
        filters: int > 0, output channels.
        kernel_size, strides, padding, dilation_rate, depth_multiplier, data_format: of the depthwise
            step, as DepthwiseConv2D; the pointwise step has stride 1.
        activation, use_bias, bias_initializer, bias_regularizer: as Conv2D.
        depthwise_initializer, pointwise_initializer, depthwise_regularizer, pointwise_regularizer:
            for the two kernels (Keras' names).
        activity_regularizer, depthwise_constraint, pointwise_constraint, bias_constraint: only None.
    Input shape:  (batch, height, width, in_channels)
    Output shape: (batch, out_height, out_width, filters)
    """

    rank = 2


class SeparableConv1D(_SeparableConv):
    """Depthwise separable 1-D convolution over time, channels last: depthwise_conv1d, then a
    convolution of width 1 mixing the channels (minidl.functional.depthwise_conv.separable_conv1d).

    Weights as Keras 3: depthwise_kernel (kernel_size, in_channels, depth_multiplier),
    pointwise_kernel (1, in_channels·depth_multiplier, filters), bias (filters,).

    Args: as SeparableConv2D, with single ints.
    Call arguments:
        mask: optional bool (batch, steps), passed on as Conv1D does (Keras drops it).
    Input shape:  (batch, steps, in_channels)
    Output shape: (batch, out_steps, filters)
    """

    rank = 1
