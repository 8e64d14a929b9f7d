"""Layer: the base of every layer — weights under Keras' names, build on first call, masks.

A layer creates its weights in ``build(input_shape)`` with ``add_weight`` (so their shapes can
follow the first input), computes in ``call(inputs, ...)``, and passes a mask on through
``compute_mask``. ``layer(x)`` does all three:

    x ──► [build once] ──► call(x, training=..., mask=...) ──► y,  y.mask = compute_mask(x, mask)

Every subclass is registered by class name, so a saved model's JSON can name its layers and
loading can rebuild them without running any code from the file.
"""
from __future__ import annotations

import inspect
import itertools
from collections import defaultdict
from typing import Any

import numpy as np

import minidl.functional as F
from minidl import backend, initializers, regularizers
from minidl.function import no_grad
from minidl.layers.serialization import LAYERS
from minidl.layers.symbolic import call_symbolic, is_symbolic, shape_trial
from minidl.tensor import Tensor, as_tensor

_name_counters: dict[str, itertools.count] = defaultdict(itertools.count)


def _snake_case(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper() or (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def unique_name(prefix: str) -> str:
    """Keras-style names: dense, dense_1, dense_2, ..."""
    n = next(_name_counters[prefix])
    return prefix if n == 0 else f"{prefix}_{n}"


class Layer:
    """Base class of layers.

    Args:
        name: the layer's name (default: the class name in snake case, numbered).
        dtype: float type of weights and computation (default ``dl.backend.floatx()``).
        trainable: whether fit() updates the weights.
        input_shape: shape of one sample, without the batch axis (older Keras code passes it
            to the first layer of a Sequential).
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        LAYERS[cls.__name__] = cls

    def __init__(self, name: str | None = None, dtype: str | None = None, trainable: bool = True,
                 input_shape: tuple | None = None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unknown argument(s) {', '.join(sorted(kwargs))}")
        self.name = name or unique_name(_snake_case(type(self).__name__))
        self._dtype = dtype
        self.trainable = trainable
        self.input_shape_arg = tuple(input_shape) if input_shape is not None else None
        self.built = False
        self.supports_masking = False
        self._own_weights: list[Tensor] = []
        self._regularized: list[tuple[Tensor, Any]] = []
        self._call_params: set | None = None

    # --- weights ---------------------------------------------------------------------------
    @property
    def dtype(self) -> str:
        return self._dtype or backend.floatx()

    def add_weight(self, name: str, shape: tuple, initializer="glorot_uniform", trainable: bool = True,
                   regularizer=None) -> Tensor:
        """Create a weight, drawn by ``initializer`` from minidl's generator, on the active backend."""
        # C order: orthogonal() returns a transposed view (asarray keeps 0-d shapes; ascontiguousarray would not)
        value = np.asarray(initializers.get(initializer)(tuple(shape)), dtype=self.dtype, order="C")
        data = backend.xp_default().asarray(value)
        weight = Tensor(data, requires_grad=trainable, name=f"{self.name}/{name}")
        weight.trainable = trainable
        self._own_weights.append(weight)
        regularizer = regularizers.get(regularizer)
        if regularizer is not None:
            self._regularized.append((weight, regularizer))
        return weight

    def sublayers(self) -> list["Layer"]:
        """Layers this layer wraps (Bidirectional, TimeDistributed); empty for plain layers."""
        return []

    @property
    def weights(self) -> list[Tensor]:
        """All weights, in the order of get_weights() (Keras' order)."""
        out = list(self._own_weights)
        for layer in self.sublayers():
            out.extend(layer.weights)
        return out

    @property
    def trainable_weights(self) -> list[Tensor]:
        if not self.trainable:
            return []
        own = [w for w in self._own_weights if getattr(w, "trainable", True)]
        for layer in self.sublayers():
            own.extend(layer.trainable_weights)
        return own

    @property
    def non_trainable_weights(self) -> list[Tensor]:
        trainable = {id(w) for w in self.trainable_weights}
        return [w for w in self.weights if id(w) not in trainable]

    def count_params(self) -> int:
        return int(sum(w.size for w in self.weights))

    def get_weights(self) -> list[np.ndarray]:
        """The weights as NumPy arrays, in Keras' order and layouts."""
        return [w.numpy().copy() for w in self.weights]

    def set_weights(self, values: list) -> None:
        """Load weights given in Keras' order and layouts (e.g. ``keras_layer.get_weights()``)."""
        weights = self.weights
        if len(values) != len(weights):
            raise ValueError(f"{self.name}: set_weights expected {len(weights)} arrays "
                             f"({', '.join(w.name for w in weights)}), got {len(values)}")
        for weight, value in zip(weights, values):
            value = backend.to_numpy(value.data if isinstance(value, Tensor) else value)
            if tuple(value.shape) != weight.shape:
                raise ValueError(f"{self.name}: weight {weight.name} has shape {weight.shape}, "
                                 f"got an array of shape {tuple(value.shape)}")
            xp = backend.get_array_module(weight.data)
            # a copy: optimizers update weights in place, which must not reach the caller's arrays
            weight.data = xp.array(value, dtype=weight.dtype, copy=True)

    def regularization_loss(self) -> Tensor | None:
        """Σ of the weight penalties (kernel_regularizer, ...), or None when there are none."""
        total = None
        for weight, regularizer in self._regularized:
            penalty = regularizer(weight)
            total = penalty if total is None else F.add(total, penalty)
        for layer in self.sublayers():
            penalty = layer.regularization_loss()
            if penalty is not None:
                total = penalty if total is None else F.add(total, penalty)
        return total

    def to(self, device: str) -> "Layer":
        """Move the weights to "cpu" or "gpu" in place; returns the layer."""
        for weight in self.weights:
            weight.data = backend.to_device(weight.data, device)
            weight.grad = None
        for name, value in vars(self).items():  # non-weight state, e.g. moving averages
            if isinstance(value, Tensor) and all(value is not w for w in self.weights):
                value.data = backend.to_device(value.data, device)
        return self

    # --- calling ---------------------------------------------------------------------------
    def build(self, input_shape: tuple) -> None:
        """Create the weights for inputs of ``input_shape`` (batch axis included)."""

    def call(self, inputs: Tensor, **kwargs) -> Tensor:
        raise NotImplementedError

    def compute_mask(self, inputs: Tensor, mask):
        """The mask of the output: passed through when the layer supports masking, else dropped."""
        return mask if self.supports_masking else None

    def __call__(self, inputs, training: bool | None = None, mask=None, **kwargs):
        if is_symbolic(inputs):  # layers.Input outputs: record a graph node (minidl.layers.symbolic)
            return call_symbolic(self, inputs, training, kwargs)
        inputs = self._prepare(inputs)
        if not self.built:
            self.build(tuple(inputs.shape))
            self.built = True
        if mask is None:
            mask = inputs.mask
        if self._call_params is None:
            self._call_params = set(inspect.signature(self.call).parameters)
        if "training" in self._call_params:
            kwargs["training"] = bool(training)
        if "mask" in self._call_params:
            kwargs["mask"] = mask
        outputs = self.call(inputs, **kwargs)
        if isinstance(outputs, Tensor):
            outputs.mask = self.compute_mask(inputs, mask)
        return outputs

    def _prepare(self, inputs) -> Tensor:
        """Inputs as a Tensor of the layer's float type (Keras casts float inputs likewise)."""
        mask = getattr(inputs, "mask", None)
        inputs = as_tensor(inputs)
        if inputs.dtype.kind == "f" and inputs.dtype != np.dtype(self.dtype):
            inputs = F.cast(inputs, self.dtype)
            inputs.mask = mask
        return inputs

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """Output shape for an input shape (batch axis may be None), found by a trial call."""
        trial = tuple(1 if n is None else n for n in input_shape)
        with no_grad(), shape_trial():
            out = self(Tensor(backend.xp_default().zeros(trial, dtype=self.dtype)))
        out = out[0] if isinstance(out, (list, tuple)) else out
        return (input_shape[0],) + tuple(out.shape[1:])

    # --- configuration ---------------------------------------------------------------------
    def get_config(self) -> dict:
        """The constructor arguments: ``type(layer)(**layer.get_config())`` rebuilds the layer."""
        config = {"name": self.name, "trainable": self.trainable}
        if self._dtype is not None:
            config["dtype"] = self._dtype
        if self.input_shape_arg is not None:
            config["input_shape"] = list(self.input_shape_arg)
        return config

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


def check_rank(layer: Layer, inputs: Tensor, rank: int, layout: str) -> None:
    """A clear error when an input has the wrong number of axes."""
    if inputs.ndim != rank:
        raise ValueError(f"{type(layer).__name__} '{layer.name}' expects a {rank}-D input {layout}, "
                         f"got shape {inputs.shape}")


def check_last_axis(layer: Layer, inputs: Tensor, expected: int, what: str = "input features") -> None:
    """A clear error when the last axis differs from what the weights were built for."""
    if inputs.shape[-1] != expected:
        raise ValueError(f"{type(layer).__name__} '{layer.name}' was built for {expected} {what}, "
                         f"got an input of shape {inputs.shape}")
