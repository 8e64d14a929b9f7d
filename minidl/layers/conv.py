"""Convolution layers with Keras' names and layouts: Conv1D, Conv2D, ZeroPadding1D, ZeroPadding2D.

Inputs are channels last, as Keras' default: Conv1D (batch, steps, channels), Conv2D
(batch, height, width, channels). Kernels are Keras' (k, in, filters) and (kh, kw, in, filters),
so ``layer.set_weights(keras_layer.get_weights())`` gives Keras' outputs.
"""
from __future__ import annotations

import minidl.functional as F
from minidl import regularizers
from minidl.backend import get_array_module
from minidl.functional.conv import axis_padding, conv1d, conv2d, normalize_tuple, output_length
from minidl.layers.base import Layer, check_last_axis, check_rank
from minidl.layers.core import config_name
from minidl.tensor import Tensor


class _Conv(Layer):
    """What Conv1D and Conv2D share: arguments, checks, weights, config."""

    rank = 0
    paddings: tuple[str, ...] = ("valid", "same")
    layout = ""

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid",
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
        if padding not in self.paddings:
            raise ValueError(f"{where}: padding must be one of {', '.join(map(repr, self.paddings))}, "
                             f"got {padding!r}")
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{where}: only data_format='channels_last' is supported, got {data_format!r}; "
                             f"transpose the input to channels last")
        self.padding, self.data_format = padding, data_format
        keep_conv_options(self, activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                          bias_regularizer)

    def build(self, input_shape: tuple) -> None:
        build_conv_weights(self, input_shape, lambda channels: self.kernel_size + (channels, self.filters))

    def _check(self, inputs: Tensor) -> None:
        check_rank(self, inputs, self.rank + 2, self.layout)
        check_last_axis(self, inputs, self.input_channels, "input channels")

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": list(self.dilation_rate), **conv_options_config(self)}


# What every convolution layer (these, and the transposed ones of layers/conv_transpose.py) keeps
# beside its geometry: the activation, the bias switch, the initializers and regularizers.

def keep_conv_options(layer: Layer, activation, use_bias: bool, kernel_initializer, bias_initializer,
                      kernel_regularizer, bias_regularizer) -> None:
    """Keep a convolution layer's activation, use_bias, initializers and regularizers on ``layer``."""
    layer.activation_name = activation
    layer.activation = F.get_activation(activation)
    layer.use_bias = use_bias
    layer.kernel_initializer, layer.bias_initializer = kernel_initializer, bias_initializer
    layer.kernel_regularizer = regularizers.get(kernel_regularizer)
    layer.bias_regularizer = regularizers.get(bias_regularizer)


def build_conv_weights(layer: Layer, input_shape: tuple, kernel_shape) -> None:
    """Check a (batch, *spatial, channels) input shape of rank ``layer.rank + 2`` and add the
    kernel of shape ``kernel_shape(input_channels)`` and the (filters,) bias (if used)."""
    if len(input_shape) != layer.rank + 2:
        raise ValueError(f"{type(layer).__name__} '{layer.name}' expects a {layer.rank + 2}-D input "
                         f"{layer.layout}, got shape {tuple(input_shape)}")
    layer.input_channels = input_shape[-1]
    layer.kernel = layer.add_weight("kernel", kernel_shape(layer.input_channels), layer.kernel_initializer,
                                    regularizer=layer.kernel_regularizer)
    layer.bias = (layer.add_weight("bias", (layer.filters,), layer.bias_initializer,
                                   regularizer=layer.bias_regularizer) if layer.use_bias else None)


def conv_options_config(layer: Layer) -> dict:
    """keep_conv_options' values as Keras' config entries."""
    return {"activation": config_name(layer.activation_name), "use_bias": layer.use_bias,
            "kernel_initializer": config_name(layer.kernel_initializer),
            "bias_initializer": config_name(layer.bias_initializer),
            "kernel_regularizer": regularizers.serialize(layer.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(layer.bias_regularizer)}


class Conv2D(_Conv):
    """2-D convolution over images, channels last: y = activation(conv2d(x, W) + b).

        y[b, p, q, f] = b[f] + Σ_{i<kh} Σ_{j<kw} Σ_{c<C} x̃[b, p·sh + i·dh, q·sw + j·dw, c] · W[i, j, c, f]

    x̃ is x padded: 'valid' not at all, out = (n - ((k - 1)·d + 1)) // s + 1 per axis; 'same'
    so that out = ceil(n / s), the extra row or column at the bottom/right (Keras' rule).
    Computed as im2col + one GEMM (minidl.functional.conv.Conv2DFunction).

    Weights as Keras: kernel (kh, kw, in_channels, filters), bias (filters,).

    Args:
        filters: int > 0, output channels.
        kernel_size, strides, dilation_rate: an int or two ints (height, width).
        padding: 'valid' or 'same'.
        data_format: None or 'channels_last' (the only layout).
        activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer:
            as Dense.
    Input shape:  (batch, height, width, in_channels)
    Output shape: (batch, out_height, out_width, filters)
    A mask on the input is dropped (Keras does the same): a (batch, steps) mask names no axis of
    an image.
    """

    rank = 2
    layout = "(batch, height, width, channels)"

    def call(self, inputs: Tensor) -> Tensor:
        self._check(inputs)
        if self.activation_name == "relu":  # fused into the convolution: one pass less each way
            return conv2d(inputs, self.kernel, self.bias, self.strides, self.padding, self.dilation_rate, relu=True)
        return self.activation(conv2d(inputs, self.kernel, self.bias, self.strides, self.padding,
                                      self.dilation_rate))


class Conv1D(_Conv):
    """1-D convolution over time, channels last: y = activation(conv1d(x, W) + b).

        y[b, t, f] = b[f] + Σ_{i<k} Σ_{c<C} x̃[b, t·s + i·d, c] · W[i, c, f],  0 ≤ t < out_steps

    x̃ is x padded: 'valid' not at all, out_steps = (steps - ((k - 1)·d + 1)) // s + 1; 'same' so
    that out_steps = ceil(steps / s), the odd extra step at the end; 'causal' with (k - 1)·d zeros
    before the first step, so out_steps = ceil(steps / s) and y[t] sees no input after t·s.

    Weights as Keras: kernel (kernel_size, in_channels, filters), bias (filters,).

    Args: as Conv2D, with single ints and padding 'valid', 'same' or 'causal'.
    Call arguments:
        mask: optional bool (batch, steps). Output step t is kept valid when input step t·s is
            valid, i.e. the output mask is mask[:, ::s] cut to out_steps; for a right-padded batch
            the valid lengths become ceil(length / s). Keras drops the mask at a convolution (its
            base class does not support masking, since a window near the end mixes padding into
            valid steps); we keep it so that a Conv1D front end can feed a masked LSTM/GRU, which
            would otherwise run over padded frames. The padded steps near the end of each valid
            region still see padding, as 'same' convolution sees zeros at the true end.
    Input shape:  (batch, steps, in_channels)
    Output shape: (batch, out_steps, filters)
    """

    rank = 1
    paddings = ("valid", "same", "causal")
    layout = "(batch, steps, channels)"

    def __init__(self, filters: int, kernel_size, strides=1, padding: str = "valid", **kwargs):
        super().__init__(filters, kernel_size, strides, padding, **kwargs)
        self.supports_masking = True

    def call(self, inputs: Tensor) -> Tensor:
        self._check(inputs)
        relu = self.activation_name == "relu"  # fused into the convolution
        y = conv1d(inputs, self.kernel, self.bias, self.strides[0], self.padding, self.dilation_rate[0], relu=relu)
        return y if relu else self.activation(y)

    def compute_mask(self, inputs: Tensor, mask):
        if mask is None:
            return None
        steps = inputs.shape[1]
        pads = axis_padding(steps, self.kernel_size[0], self.strides[0], self.dilation_rate[0], self.padding)
        out_steps = output_length(steps, self.kernel_size[0], self.strides[0], self.dilation_rate[0], pads)
        return time_mask(mask, self.strides[0], out_steps)


def time_mask(mask, stride: int, out_steps: int):
    """The mask after a layer that moves along time by ``stride``: step t is valid when input
    step t·stride is: ``mask[:, ::stride][:, :out_steps]`` (Conv1D, pooling along time)."""
    return mask[:, ::stride][:, :out_steps]


def _padding_pairs(padding, rank: int, where: str) -> tuple[tuple[int, int], ...]:
    """Keras' padding forms: an int, ``rank`` ints (symmetric), or ``rank`` (before, after) pairs
    (for rank 1: one (before, after) pair)."""
    if isinstance(padding, int):
        pairs = ((padding, padding),) * rank
    elif rank == 1 and len(padding) == 2 and all(isinstance(p, int) for p in padding):
        pairs = (tuple(padding),)
    elif len(padding) == rank and all(isinstance(p, int) for p in padding):
        pairs = tuple((p, p) for p in padding)
    elif len(padding) == rank and all(len(p) == 2 for p in padding):
        pairs = tuple(tuple(p) for p in padding)
    else:
        raise ValueError(f"{where}: padding must be an int, {rank} ints or {rank} (before, after) pairs, "
                         f"got {padding!r}")
    if any(not isinstance(v, int) or v < 0 for pair in pairs for v in pair):
        raise ValueError(f"{where}: padding must be non-negative ints, got {padding!r}")
    return tuple((int(a), int(b)) for a, b in pairs)


class ZeroPadding1D(Layer):
    """Zeros added before and after the time axis: (batch, steps, c) -> (batch, before + steps + after, c).

    Args:
        padding: int (both sides) or a (before, after) pair.
    Call arguments:
        mask: passed on with the added steps False (Keras drops it); a left pad leaves the
            batch no longer right-padded.
    """

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = _padding_pairs(padding, 1, f"ZeroPadding1D '{self.name}'")[0]
        self.supports_masking = True

    def call(self, inputs: Tensor) -> Tensor:
        check_rank(self, inputs, 3, "(batch, steps, channels)")
        return F.pad(inputs, ((0, 0), self.padding, (0, 0)))

    def compute_mask(self, inputs: Tensor, mask):
        if mask is None:
            return None
        return get_array_module(mask).pad(mask, ((0, 0), self.padding), constant_values=False)

    def get_config(self) -> dict:
        return {**super().get_config(), "padding": list(self.padding)}


class ZeroPadding2D(Layer):
    """Rows and columns of zeros around images: (batch, h, w, c) -> (batch, top + h + bottom,
    left + w + right, c).

    Args:
        padding: int, (symmetric_height, symmetric_width) or ((top, bottom), (left, right)).
        data_format: None or 'channels_last'.
    """

    def __init__(self, padding=(1, 1), data_format: str | None = None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"ZeroPadding2D '{self.name}': only data_format='channels_last' is supported, "
                             f"got {data_format!r}")
        self.padding = _padding_pairs(padding, 2, f"ZeroPadding2D '{self.name}'")
        self.data_format = data_format

    def call(self, inputs: Tensor) -> Tensor:
        check_rank(self, inputs, 4, "(batch, height, width, channels)")
        return F.pad(inputs, ((0, 0),) + self.padding + ((0, 0),))

    def get_config(self) -> dict:
        return {**super().get_config(), "padding": [list(p) for p in self.padding],
                "data_format": self.data_format}
