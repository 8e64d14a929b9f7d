"""Activations as layers, with Keras' names and arguments: ReLU, LeakyReLU, PReLU, ELU, Softmax.

Each is the op of ``minidl.functional.activation`` with its options fixed at construction; they
pass masks on unchanged (Keras' ``supports_masking``). PReLU is the one with a weight, ``alpha``.
"""
from __future__ import annotations

import minidl.functional as F
from minidl import regularizers
from minidl.backend import get_array_module
from minidl.layers.base import Layer
from minidl.layers.core import config_name
from minidl.tensor import Tensor


class ReLU(Layer):
    """Keras' ReLU layer; see ``F.relu_with_options``:

        y = max_value for x ≥ max_value;  x for threshold ≤ x < max_value;
            negative_slope·(x - threshold) below threshold

    Args:
        max_value: None (no ceiling) or a float ≥ 0. negative_slope: float ≥ 0. threshold: float.
    Input/Output shape: any, unchanged.
    """

    def __init__(self, max_value: float | None = None, negative_slope: float = 0.0, threshold: float = 0.0,
                 **kwargs):
        super().__init__(**kwargs)
        if max_value is not None and max_value < 0:
            raise ValueError(f"ReLU: max_value must be >= 0 or None, got {max_value!r}")
        if negative_slope is None or negative_slope < 0:
            raise ValueError(f"ReLU: negative_slope must be a float >= 0, got {negative_slope!r}")
        if threshold is None:
            raise ValueError("ReLU: threshold must be a float, got None")
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope, self.threshold = float(negative_slope), float(threshold)
        self.supports_masking = True

    def call(self, inputs: Tensor) -> Tensor:
        return F.relu_with_options(inputs, self.negative_slope, self.max_value, self.threshold)

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value, "negative_slope": self.negative_slope,
                "threshold": self.threshold}


class LeakyReLU(Layer):
    """y = x for x > 0, negative_slope·x otherwise (Keras' default slope for the layer is 0.3).
    Input/Output shape: any, unchanged."""

    def __init__(self, negative_slope: float = 0.3, **kwargs):
        super().__init__(**kwargs)
        if negative_slope is None or negative_slope < 0:
            raise ValueError(f"LeakyReLU: negative_slope must be a float >= 0, got {negative_slope!r}")
        self.negative_slope = float(negative_slope)
        self.supports_masking = True

    def call(self, inputs):
        return F.leaky_relu(inputs, alpha=self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(Layer):
    """y = x for x > 0, alpha·(eˣ - 1) otherwise. Input/Output shape: any, unchanged."""

    def __init__(self, alpha: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)
        self.supports_masking = True

    def call(self, inputs):
        return F.elu(inputs, alpha=self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class PReLU(Layer):
    """Parametric ReLU: y = x for x > 0, α·x otherwise, α learned (He et al., 2015).

    Weight as in Keras: ``alpha`` of the sample shape (input_shape[1:]), with size 1 along each
    of ``shared_axes`` (axis 1 is the first axis after the batch), so e.g. shared_axes=[1] on
    (batch, time, channels) learns one α per channel.

    Args:
        alpha_initializer: Keras name or callable (default "zeros": a plain ReLU at the start).
        alpha_regularizer: None, "l1", "l2" or a Regularizer.
        shared_axes: int or list of ints ≥ 1.
    Input/Output shape: (batch, ...), unchanged.
    """

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None,
                 shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        if alpha_constraint is not None:
            raise NotImplementedError("PReLU: alpha_constraint is not supported by minidl (weight constraints "
                                      "are not implemented)")
        self.alpha_initializer = alpha_initializer.lower() if isinstance(alpha_initializer, str) else alpha_initializer
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        if shared_axes is not None and not isinstance(shared_axes, (list, tuple)):
            shared_axes = [shared_axes]
        self.shared_axes = None if shared_axes is None else [int(a) for a in shared_axes]
        self.supports_masking = True

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for axis in self.shared_axes or []:
            if not 1 <= axis <= len(shape):
                raise ValueError(f"PReLU '{self.name}': shared axis {axis} is outside axes 1..{len(shape)} of "
                                 f"inputs of shape {tuple(input_shape)}")
            shape[axis - 1] = 1
        self.sample_rank = len(shape)
        self.alpha = self.add_weight("alpha", tuple(shape), self.alpha_initializer,
                                     regularizer=self.alpha_regularizer)

    def call(self, inputs):
        if inputs.ndim != self.sample_rank + 1:
            raise ValueError(f"PReLU '{self.name}' was built for {self.sample_rank + 1}-D inputs, "
                             f"got shape {inputs.shape}")
        return F.prelu(inputs, self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha_initializer": config_name(self.alpha_initializer),
                "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
                "shared_axes": self.shared_axes}


class Softmax(Layer):
    """Softmax along ``axis``; with a mask, masked positions get probability 0 (Keras' rule:
    they are set to -1e9 before the softmax, and to 0 after it, so a wholly masked row is 0).

    Args:
        axis: int (default -1).
    Call arguments:
        mask: optional, broadcastable to the inputs (aligned on the trailing axes); True or
            > 0.5 keeps a position.
    Input/Output shape: any, unchanged.
    """

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            if len(axis) != 1:
                raise NotImplementedError(f"Softmax: a softmax over several axes {list(axis)} is not "
                                          "supported by minidl; give one axis")
            axis = axis[0]
        self.axis = int(axis)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            return F.softmax(inputs, axis=self.axis)
        keep = masked_softmax_keep(self, inputs, mask)
        scores = F.where(keep, inputs, -1e9)
        return F.where(keep, F.softmax(scores, axis=self.axis), 0.0)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def masked_softmax_keep(layer: Layer, inputs: Tensor, mask):
    """The mask as booleans broadcast to ``inputs``' shape (True or > 0.5 keeps), or a clear error."""
    mask = getattr(mask, "data", mask)
    xp = get_array_module(inputs.data)
    mask = xp.asarray(mask)
    keep = mask if mask.dtype == bool else mask > 0.5
    try:
        return xp.broadcast_to(keep, inputs.shape)
    except ValueError:
        raise ValueError(f"{type(layer).__name__} '{layer.name}': the mask of shape {tuple(mask.shape)} must be "
                         f"broadcastable to the inputs of shape {inputs.shape}") from None
