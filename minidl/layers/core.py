"""Core layers: Dense, Activation, Flatten, Dropout, Reshape (Input and InputLayer: input_layer.py)."""
from __future__ import annotations

import math

import minidl.functional as F
from minidl import regularizers
from minidl.layers.base import Layer, check_last_axis
from minidl.layers.input_layer import Input, InputLayer  # noqa: F401 (their old import path)
from minidl.tensor import Tensor


class Dense(Layer):
    """A fully connected layer: y = activation(x·W + b) over the last axis.

    Weights as in Keras: kernel W (input_dim, units), bias b (units,).

    Args:
        units: int > 0, output size.
        activation: Keras name ("relu", "softmax", ...) or callable; None means linear.
        use_bias: whether to add b.
        kernel_initializer, bias_initializer: Keras names or callables.
        kernel_regularizer, bias_regularizer: None, "l1", "l2", or a Regularizer; the penalty is
            added to the training loss.
    Input shape:  (batch, ..., input_dim)
    Output shape: (batch, ..., units)
    """

    def __init__(self, units: int, activation=None, use_bias: bool = True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units <= 0:
            raise ValueError(f"Dense: units must be a positive int, got {units!r}")
        self.units = units
        self.activation_name = activation
        self.activation = F.get_activation(activation)
        self.use_bias = use_bias
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"Dense '{self.name}' expects an input of shape (batch, ..., features), "
                             f"got shape {input_shape}")
        self.input_dim = input_shape[-1]
        self.kernel = self.add_weight("kernel", (self.input_dim, self.units), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self.bias = (self.add_weight("bias", (self.units,), self.bias_initializer,
                                     regularizer=self.bias_regularizer) if self.use_bias else None)

    def call(self, inputs: Tensor) -> Tensor:
        check_last_axis(self, inputs, self.input_dim)
        return self.activation(F.affine(inputs, self.kernel, self.bias))

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": config_name(self.activation_name),
                "use_bias": self.use_bias, "kernel_initializer": config_name(self.kernel_initializer),
                "bias_initializer": config_name(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer)}


def config_name(value):
    """A JSON-able name for an activation or initialiser given by name or function."""
    if value is None or isinstance(value, str):
        return value
    name = getattr(value, "__name__", None)
    if name is None:
        raise TypeError(f"cannot save {value!r}: give activations and initialisers by name")
    return name


class Activation(Layer):
    """y = activation(x), elementwise (softmax: over the last axis)."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation_name = activation
        self.activation = F.get_activation(activation)
        self.supports_masking = True

    def call(self, inputs):
        return self.activation(inputs)

    def get_config(self):
        return {**super().get_config(), "activation": config_name(self.activation_name)}


class Flatten(Layer):
    """(batch, d1, d2, ...) -> (batch, d1·d2·...)."""

    def call(self, inputs):
        return F.reshape(inputs, (inputs.shape[0], -1) if inputs.ndim > 1 else (-1, 1))


class Reshape(Layer):
    """(batch, ...) -> (batch, *target_shape); one entry of target_shape may be -1."""

    def __init__(self, target_shape: tuple, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(target_shape)

    def call(self, inputs):
        size = math.prod(inputs.shape[1:])
        known = math.prod(n for n in self.target_shape if n != -1)
        if (-1 not in self.target_shape and known != size) or (known == 0 or size % known):
            raise ValueError(f"Reshape '{self.name}': cannot reshape samples of shape {inputs.shape[1:]} "
                             f"({size} values) to {self.target_shape}")
        return F.reshape(inputs, (inputs.shape[0],) + self.target_shape)

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Dropout(Layer):
    """Inverted dropout: in training, zero a fraction ``rate`` of the inputs and scale the rest by
    1 / (1 - rate); at inference, the identity (Srivastava et al., 2014).

    Args:
        rate: float in [0, 1). noise_shape: mask shape, broadcast to the input (None for full).
    """

    def __init__(self, rate: float, noise_shape: tuple | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.noise_shape = tuple(noise_shape) if noise_shape is not None else None
        self.supports_masking = True

    def call(self, inputs, training=False):
        noise_shape = None
        if self.noise_shape is not None:
            noise_shape = tuple(n if m is None else m for n, m in zip(inputs.shape, self.noise_shape))
        return F.dropout(inputs, self.rate, training=training, noise_shape=noise_shape)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate,
                "noise_shape": list(self.noise_shape) if self.noise_shape is not None else None}
