"""Losses by Keras name, and the reduction Keras applies: a weighted mean over the batch.

Each loss function returns one value per sample (see ``minidl.functional.loss``); ``reduce_loss``
turns them into the scalar that training minimises, as Keras' "sum_over_batch_size":

    loss = Σ_n w_n · loss_n / N        (N samples in the batch; w_n = 1 without sample weights)
"""
from __future__ import annotations

import functools
from typing import Callable

import minidl.functional as F
from minidl.backend import get_array_module
from minidl.tensor import Tensor

LOSSES: dict[str, Callable] = {
    "sparse_categorical_crossentropy": F.sparse_categorical_crossentropy,
    "categorical_crossentropy": F.categorical_crossentropy,
    "binary_crossentropy": F.binary_crossentropy,
    "mean_squared_error": F.mean_squared_error,
    "mse": F.mean_squared_error,
}


class Loss:
    """A loss with Keras' class interface: ``Loss()(y_true, y_pred, sample_weight=None)``."""

    name = "loss"

    def __init__(self, fn: Callable, name: str, **options):
        self.fn = functools.partial(fn, **options) if options else fn
        self.name = name
        self.options = options

    def __call__(self, y_true, y_pred: Tensor, sample_weight=None) -> Tensor:
        return reduce_loss(self.fn(y_true, y_pred), sample_weight)


def SparseCategoricalCrossentropy(from_logits: bool = False) -> Loss:  # noqa: N802 (Keras' name)
    return Loss(F.sparse_categorical_crossentropy, "sparse_categorical_crossentropy", from_logits=from_logits)


def CategoricalCrossentropy(from_logits: bool = False) -> Loss:  # noqa: N802
    return Loss(F.categorical_crossentropy, "categorical_crossentropy", from_logits=from_logits)


def BinaryCrossentropy(from_logits: bool = False) -> Loss:  # noqa: N802
    return Loss(F.binary_crossentropy, "binary_crossentropy", from_logits=from_logits)


def MeanSquaredError() -> Loss:  # noqa: N802
    return Loss(F.mean_squared_error, "mean_squared_error")


def reduce_loss(per_sample: Tensor, sample_weight=None) -> Tensor:
    """Σ w·loss / N over every per-sample value (Keras' sum_over_batch_size)."""
    if sample_weight is None:
        return F.mean(per_sample)
    xp = get_array_module(per_sample.data)
    weight = xp.asarray(getattr(sample_weight, "data", sample_weight), dtype=per_sample.dtype)
    weight = weight.reshape(weight.shape + (1,) * (per_sample.ndim - weight.ndim))
    return F.div(F.sum(F.mul(per_sample, weight)), float(max(per_sample.size, 1)))


def get(identifier) -> Loss:
    """A Loss from a Keras name, a Loss, or a function (y_true, y_pred) -> per-sample Tensor."""
    if isinstance(identifier, Loss):
        return identifier
    if callable(identifier):
        return Loss(identifier, getattr(identifier, "__name__", "loss"))
    if identifier not in LOSSES:
        raise ValueError(f"unknown loss {identifier!r}; known: {', '.join(sorted(LOSSES))}")
    return Loss(LOSSES[identifier], identifier if identifier != "mse" else "mean_squared_error")
