"""Normalisation layers with Keras' names, defaults and weight order: BatchNormalization,
LayerNormalization, and Normalization (feature standardisation learnt by ``adapt``)."""
from __future__ import annotations

import numpy as np

from minidl import backend, regularizers
from minidl.functional.normalization import (batch_normalization, batch_normalization_masked_train,
                                             batch_normalization_train, layer_normalization)
from minidl.layers.base import Layer
from minidl.layers.core import config_name
from minidl.tensor import Tensor


def _check_axis(layer: Layer, axis: int, ndim: int) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"{type(layer).__name__} '{layer.name}': axis {axis} is out of range for "
                         f"a {ndim}-D input")
    return axis % ndim


class BatchNormalization(Layer):
    """Batch normalisation (Ioffe & Szegedy, 2015) over every axis but ``axis``.

    Training (``training=True``), with μ_B and σ²_B the mean and biased variance of this batch:

        y = γ ⊙ (x - μ_B) / √(σ²_B + eps) + β
        moving_mean ← momentum · moving_mean + (1 - momentum) · μ_B
        moving_variance ← momentum · moving_variance + (1 - momentum) · σ²_B

    Inference: y = γ ⊙ (x - moving_mean) / √(moving_variance + eps) + β. The backward of both
    is in minidl.functional.normalization. The moving statistics are updated in place, outside
    the graph (they are non-trainable weights).

    Weights, in Keras' order: gamma (if scale), beta (if center), moving_mean, moving_variance,
    each (features,).

    Args:
        axis: the feature axis (default -1, channels last).
        momentum: of the moving averages (Keras: 0.99). epsilon: added to the variance (1e-3).
        center, scale: learn β, γ. *_initializer, *_regularizer: as Keras.
    Input shape: any, features on ``axis``. Output shape: the same. A mask (x's shape without
    the last axis, e.g. (batch, steps)) is passed on, and in training the batch statistics
    leave masked positions out, as Keras 3 does (see batch_normalization_masked_train).
    """

    def __init__(self, axis: int = -1, momentum: float = 0.99, epsilon: float = 1e-3, center: bool = True,
                 scale: bool = True, beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(axis, int):
            raise ValueError(f"BatchNormalization '{self.name}': axis must be an int, got {axis!r}")
        if not 0 <= momentum <= 1 or epsilon <= 0:
            raise ValueError(f"BatchNormalization '{self.name}': expected 0 <= momentum <= 1 and epsilon > 0, "
                             f"got momentum={momentum}, epsilon={epsilon}")
        self.axis, self.momentum, self.epsilon = axis, float(momentum), float(epsilon)
        self.center, self.scale = center, scale
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer
        self.moving_mean_initializer = moving_mean_initializer
        self.moving_variance_initializer = moving_variance_initializer
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.supports_masking = True

    def build(self, input_shape: tuple) -> None:
        self.feature_axis = _check_axis(self, self.axis, len(input_shape))
        shape = (input_shape[self.feature_axis],)
        self.gamma = (self.add_weight("gamma", shape, self.gamma_initializer, regularizer=self.gamma_regularizer)
                      if self.scale else None)
        self.beta = (self.add_weight("beta", shape, self.beta_initializer, regularizer=self.beta_regularizer)
                     if self.center else None)
        self.moving_mean = self.add_weight("moving_mean", shape, self.moving_mean_initializer, trainable=False)
        self.moving_variance = self.add_weight("moving_variance", shape, self.moving_variance_initializer,
                                               trainable=False)

    def call(self, inputs: Tensor, training: bool = False, mask=None) -> Tensor:
        axis = _check_axis(self, self.axis, inputs.ndim)
        if inputs.shape[axis] != self.moving_mean.shape[0]:
            raise ValueError(f"BatchNormalization '{self.name}' was built for {self.moving_mean.shape[0]} "
                             f"features on axis {self.axis}, got an input of shape {inputs.shape}")
        if not training:
            return batch_normalization(inputs, self.moving_mean, self.moving_variance, self.gamma, self.beta,
                                       axis, self.epsilon)
        if mask is None:
            y, mean, variance = batch_normalization_train(inputs, self.gamma, self.beta, axis, self.epsilon)
        else:
            y, mean, variance = batch_normalization_masked_train(inputs, mask, self.gamma, self.beta, axis,
                                                                 self.epsilon)
        decay = self.moving_mean.dtype.type(1 - self.momentum)
        # in place on .data, outside autograd: m ← m - (1 - momentum)(m - μ_B) = momentum·m + (1 - momentum)·μ_B
        self.moving_mean.data -= decay * (self.moving_mean.data - mean.astype(self.moving_mean.dtype))
        self.moving_variance.data -= decay * (self.moving_variance.data - variance.astype(self.moving_variance.dtype))
        return y

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale,
                "beta_initializer": config_name(self.beta_initializer), "gamma_initializer": config_name(self.gamma_initializer),
                "moving_mean_initializer": config_name(self.moving_mean_initializer),
                "moving_variance_initializer": config_name(self.moving_variance_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer)}


class LayerNormalization(Layer):
    """Layer normalisation (Ba et al., 2016): each sample standardised over ``axis``.

        μ, σ² = mean and biased variance of x over ``axis``, per sample
        y = γ ⊙ (x - μ) / √(σ² + eps) + β

    Weights, in Keras' order: gamma (if scale), beta (if center), shaped like x on ``axis``.

    Args:
        axis: int or tuple of ints (default -1). epsilon: 1e-3 (Keras). center, scale,
            *_initializer, *_regularizer: as Keras.
    Input shape: any. Output shape: the same. A mask is passed on (each step is normalised alone).
    """

    def __init__(self, axis=-1, epsilon: float = 1e-3, center: bool = True, scale: bool = True,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis if isinstance(axis, int) else tuple(axis)
        self.epsilon, self.center, self.scale = float(epsilon), center, scale
        self.beta_initializer, self.gamma_initializer = beta_initializer, gamma_initializer
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.supports_masking = True

    def build(self, input_shape: tuple) -> None:
        axes = (self.axis,) if isinstance(self.axis, int) else self.axis
        self.axes = tuple(sorted(_check_axis(self, a, len(input_shape)) for a in axes))
        shape = tuple(input_shape[a] for a in self.axes)
        self.gamma = (self.add_weight("gamma", shape, self.gamma_initializer, regularizer=self.gamma_regularizer)
                      if self.scale else None)
        self.beta = (self.add_weight("beta", shape, self.beta_initializer, regularizer=self.beta_regularizer)
                     if self.center else None)
        self.feature_shape = shape

    def call(self, inputs: Tensor) -> Tensor:
        axes = (self.axis,) if isinstance(self.axis, int) else self.axis
        axes = tuple(sorted(_check_axis(self, a, inputs.ndim) for a in axes))
        if tuple(inputs.shape[a] for a in axes) != self.feature_shape:
            raise ValueError(f"LayerNormalization '{self.name}' was built for shape {self.feature_shape} on "
                             f"axis {self.axis}, got an input of shape {inputs.shape}")
        return layer_normalization(inputs, self.gamma, self.beta, axes, self.epsilon)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis if isinstance(self.axis, int) else list(self.axis),
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale,
                "beta_initializer": config_name(self.beta_initializer), "gamma_initializer": config_name(self.gamma_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer)}


class Normalization(Layer):
    """Feature standardisation with statistics learnt from data, as Keras' preprocessing layer:

        y = (x - mean) / max(√variance, 1e-7)          (invert=True: y = mean + x · max(√variance, 1e-7))

    ``adapt(data)`` sets mean and variance (biased) over every axis but ``axis``; or pass them to
    the constructor. Typical use: standardise MFCC features with the training set's statistics.

    Weights, in Keras' order when adapted (not given): mean, variance (shaped like x on
    ``axis``), count (a scalar, kept for Keras' weight list). All non-trainable.

    Args:
        axis: the axis (int or tuple) that keeps its own statistics (default -1); None for one
            scalar mean and variance.
        mean, variance: optional fixed statistics, broadcastable to x on ``axis``.
        invert: map standardised values back.
    Input shape: any. Output shape: the same. A mask is passed on.
    """

    def __init__(self, axis=-1, mean=None, variance=None, invert: bool = False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        self.axis = (axis,) if isinstance(axis, int) else tuple(axis)
        if (mean is None) != (variance is None):
            raise ValueError(f"Normalization '{self.name}': give both mean and variance or neither, got "
                             f"mean={mean!r}, variance={variance!r}")
        self.input_mean, self.input_variance = mean, variance
        self.invert = invert
        self.supports_masking = True

    def build(self, input_shape: tuple) -> None:
        ndim = len(input_shape)
        self.keep_axes = tuple(sorted(_check_axis(self, a, ndim) for a in self.axis))
        self.reduce_axes = tuple(i for i in range(ndim) if i not in self.keep_axes)
        self.broadcast_shape = tuple(input_shape[i] if i in self.keep_axes else 1 for i in range(ndim))
        shape = tuple(input_shape[i] for i in self.keep_axes)
        if self.input_mean is None:
            self.mean = self.add_weight("mean", shape, "zeros", trainable=False)
            self.variance = self.add_weight("variance", shape, "ones", trainable=False)
            self.count = self.add_weight("count", (), "zeros", trainable=False)
        else:
            xp = backend.xp_default()
            self.mean = Tensor(xp.broadcast_to(xp.asarray(self.input_mean, dtype=self.dtype), shape).copy())
            self.variance = Tensor(xp.broadcast_to(xp.asarray(self.input_variance, dtype=self.dtype), shape).copy())

    def adapt(self, data) -> None:
        """Set mean and variance from ``data`` (an array, or a list of batches of one shape
        but the batch axis), over every axis but ``axis``."""
        batches = data if isinstance(data, (list, tuple)) else [data]
        arrays = [backend.to_numpy(b.data if isinstance(b, Tensor) else b).astype(np.float64) for b in batches]
        if not arrays or any(a.ndim == 0 for a in arrays):
            raise ValueError(f"Normalization '{self.name}': adapt expects an array of shape (samples, ...) "
                             f"or a non-empty list of them")
        values = np.concatenate(arrays, axis=0)
        if not self.built:
            self.build(values.shape)
            self.built = True
        elif self.input_mean is not None:
            raise ValueError(f"Normalization '{self.name}' was given mean and variance; it cannot adapt")
        mean = values.mean(axis=self.reduce_axes)
        variance = values.var(axis=self.reduce_axes)
        if mean.shape != self.mean.shape:
            raise ValueError(f"Normalization '{self.name}' keeps statistics of shape {self.mean.shape}, "
                             f"got data of shape {values.shape}")
        xp = backend.get_array_module(self.mean.data)
        self.mean.data = xp.asarray(mean, dtype=self.mean.dtype)
        self.variance.data = xp.asarray(variance, dtype=self.variance.dtype)
        self.count.data = xp.asarray(values.size // max(mean.size, 1), dtype=self.count.dtype)

    def call(self, inputs: Tensor) -> Tensor:
        shape = tuple(n if i in self.keep_axes else 1 for i, n in enumerate(inputs.shape))
        if inputs.ndim != len(self.broadcast_shape) or shape != self.broadcast_shape:
            raise ValueError(f"Normalization '{self.name}' was built for inputs shaped like "
                             f"{self.broadcast_shape} on axis {self.axis}, got shape {inputs.shape}")
        xp = backend.get_array_module(inputs.data)
        mean = self.mean.data.reshape(shape).astype(inputs.dtype)
        scale = xp.maximum(xp.sqrt(self.variance.data.reshape(shape)), 1e-7).astype(inputs.dtype)
        if self.invert:
            return inputs * scale + mean
        return (inputs - mean) / scale

    def get_config(self) -> dict:
        def listed(value):
            return None if value is None else np.asarray(value).tolist()
        axis = self.axis[0] if len(self.axis) == 1 else list(self.axis)
        return {**super().get_config(), "axis": axis if self.axis else None, "mean": listed(self.input_mean),
                "variance": listed(self.input_variance), "invert": self.invert}
