"""Losses by Keras name and as Keras' classes, and the reduction Keras applies: a weighted mean
over the batch.

Each loss function returns one value per sample (see ``minidl.functional.loss``); ``reduce_loss``
turns them into the scalar that training minimises, as Keras' "sum_over_batch_size":

    loss = Σ_n w_n · loss_n / N        (N samples in the batch; w_n = 1 without sample weights)

The classes (``BinaryCrossentropy(from_logits=True, label_smoothing=0.1)``, ``Huber(delta=2)``,
``CTC()``, ...) take Keras' arguments; ``get`` takes Keras' string names and aliases ("mae",
"kld", "logcosh", ...). A Keras loss minidl lacks raises NotImplementedError naming it.
"""
from __future__ import annotations

import functools
from typing import Callable

import numpy as np

import minidl.functional as F
from minidl.backend import get_array_module
from minidl.functional.loss import (binary_crossentropy, categorical_crossentropy, cosine_similarity, hinge,
                                    huber, kl_divergence, log_cosh, mean_absolute_error,
                                    mean_absolute_percentage_error, mean_squared_error,
                                    mean_squared_logarithmic_error, poisson, sparse_categorical_crossentropy,
                                    squared_hinge)
from minidl.tensor import Tensor, as_tensor


def ctc(y_true, y_pred) -> Tensor:
    """Keras' ``ctc`` loss: one CTC loss per sample, from logits, class 0 the blank.

    Args:
        y_true: (batch, max_length) integer labels; 0 is the blank and pads (Keras counts a
            sample's labels as its nonzero entries, which are taken in order).
        y_pred: (batch, time, classes) logits (not softmax outputs); every frame is used.
    Returns:
        (batch,) losses, -log p(labels | frames), not divided by the label length (Keras').
    """
    y_pred = as_tensor(y_pred)
    labels = np.asarray(getattr(y_true, "data", y_true))
    if labels.ndim != 2:
        raise ValueError(f"ctc: y_true must be (batch_size, max_length) integer labels, got shape {labels.shape}")
    if y_pred.ndim != 3:
        raise ValueError(f"ctc: y_pred must be (batch_size, max_length, num_classes) logits, got shape {y_pred.shape}")
    labels = labels.astype(np.int64)
    # the nonzero labels first, in their order (a stable sort on "is padding"), then the padding
    order = np.argsort(labels == 0, axis=1, kind="stable")
    labels = np.take_along_axis(labels, order, axis=1)
    label_lengths = (labels != 0).sum(axis=1)
    frames = np.full(y_pred.shape[0], y_pred.shape[1], dtype=np.int64)
    return F.ctc_loss(F.log_softmax(y_pred), labels, frames, label_lengths, blank=0, reduction="none")


# Keras' names and aliases -> the per-sample function (keras.losses.get accepts the same strings)
LOSSES: dict[str, Callable] = {
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
    "categorical_crossentropy": categorical_crossentropy,
    "binary_crossentropy": binary_crossentropy, "bce": binary_crossentropy,
    "mean_squared_error": mean_squared_error, "mse": mean_squared_error,
    "mean_absolute_error": mean_absolute_error, "mae": mean_absolute_error,
    "huber": huber, "log_cosh": log_cosh, "kl_divergence": kl_divergence, "kld": kl_divergence,
    "cosine_similarity": cosine_similarity,
    "mean_absolute_percentage_error": mean_absolute_percentage_error, "mape": mean_absolute_percentage_error,
    "mean_squared_logarithmic_error": mean_squared_logarithmic_error, "msle": mean_squared_logarithmic_error,
    "hinge": hinge, "squared_hinge": squared_hinge, "poisson": poisson, "ctc": ctc,
}

LOSSES.update({alias.upper(): LOSSES[alias] for alias in ("mse", "mae", "mape", "msle", "kld", "bce")})

# keras.losses names minidl lacks: asking for one says so by name
KERAS_ONLY_LOSSES = ("binary_focal_crossentropy", "categorical_focal_crossentropy", "categorical_hinge",
                     "circle", "dice", "tversky", "BinaryFocalCrossentropy", "CategoricalFocalCrossentropy",
                     "CategoricalHinge", "Circle", "Dice", "Tversky")

REDUCTIONS = ("sum_over_batch_size", "sum", "none", None)


class Loss:
    """A loss with Keras' class interface: ``Loss()(y_true, y_pred, sample_weight=None)``.

    Args:
        fn: per-sample loss ``fn(y_true, y_pred, **options) -> Tensor``.
        name: the name Keras logs it by.
        reduction: "sum_over_batch_size" (Keras' default: Σ w·loss / N), "sum" (Σ w·loss), or
            "none" / None (the weighted per-sample values, unreduced).
        options: keyword arguments passed to ``fn`` (from_logits, label_smoothing, delta, ...).
    """

    name = "loss"

    def __init__(self, fn: Callable, name: str, reduction: str | None = "sum_over_batch_size", **options):
        if reduction not in REDUCTIONS:
            raise NotImplementedError(f"{type(self).__name__}: reduction {reduction!r} is not supported by minidl; "
                                      f"supported: {', '.join(map(repr, REDUCTIONS))}")
        self.fn = functools.partial(fn, **options) if options else fn
        self.name = name
        self.reduction = reduction
        self.options = options

    def __call__(self, y_true, y_pred: Tensor, sample_weight=None) -> Tensor:
        per_sample = self.fn(y_true, y_pred)
        if self.reduction == "sum_over_batch_size":
            return reduce_loss(per_sample, sample_weight)
        weighted = per_sample if sample_weight is None else F.mul(per_sample, _weights(per_sample, sample_weight))
        return F.sum(weighted) if self.reduction == "sum" else weighted

    def __repr__(self) -> str:
        options = "".join(f", {key}={value!r}" for key, value in self.options.items())
        return f"<{type(self).__name__} {self.name}{options}>"


def _keras_class(fn: Callable, default_name: str, keyword_defaults: dict, unsupported: dict | None = None):
    """A Loss subclass taking Keras' keyword arguments (with Keras' defaults), plus reduction and name."""

    def __init__(self, *args, reduction="sum_over_batch_size", name: str = default_name, **kwargs):
        if args:
            raise TypeError(f"{type(self).__name__}: give the arguments by keyword ({', '.join(keyword_defaults)})")
        for key, refused in (unsupported or {}).items():
            if kwargs.pop(key, refused) != refused:
                raise NotImplementedError(f"{type(self).__name__}: {key} is not supported by minidl")
        unknown = set(kwargs) - set(keyword_defaults)
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown argument(s) {', '.join(sorted(unknown))}")
        options = {**keyword_defaults, **kwargs}
        Loss.__init__(self, fn, name, reduction, **options)

    return __init__


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy against integer labels; ``from_logits``. Keras' ``ignore_class`` is refused."""
    __init__ = _keras_class(sparse_categorical_crossentropy, "sparse_categorical_crossentropy",
                            {"from_logits": False}, {"ignore_class": None, "axis": -1})


class CategoricalCrossentropy(Loss):
    """Cross-entropy against one-hot targets; ``from_logits``, ``label_smoothing``."""
    __init__ = _keras_class(categorical_crossentropy, "categorical_crossentropy",
                            {"from_logits": False, "label_smoothing": 0.0}, {"axis": -1})


class BinaryCrossentropy(Loss):
    """Binary cross-entropy; ``from_logits``, ``label_smoothing``; labels (n,) fit outputs (n, 1)."""
    __init__ = _keras_class(binary_crossentropy, "binary_crossentropy",
                            {"from_logits": False, "label_smoothing": 0.0}, {"axis": -1})


class MeanSquaredError(Loss):
    """mean((y_true - y_pred)²) over the last axis."""
    __init__ = _keras_class(mean_squared_error, "mean_squared_error", {})


class MeanAbsoluteError(Loss):
    """mean(|y_true - y_pred|) over the last axis."""
    __init__ = _keras_class(mean_absolute_error, "mean_absolute_error", {})


class Huber(Loss):
    """Quadratic within ``delta`` of the target, linear beyond (Keras' default delta = 1)."""
    __init__ = _keras_class(huber, "huber_loss", {"delta": 1.0})


class LogCosh(Loss):
    """mean(log cosh(y_pred - y_true)) over the last axis."""
    __init__ = _keras_class(log_cosh, "log_cosh", {})


class KLDivergence(Loss):
    """Σ t·log(t/p) over the last axis, both clipped to [ε, 1]."""
    __init__ = _keras_class(kl_divergence, "kl_divergence", {})


class CosineSimilarity(Loss):
    """Minus the cosine of the angle between targets and predictions along ``axis``."""
    __init__ = _keras_class(cosine_similarity, "cosine_similarity", {"axis": -1})


class MeanAbsolutePercentageError(Loss):
    """100 · mean(|(t - p) / t|) over the last axis."""
    __init__ = _keras_class(mean_absolute_percentage_error, "mean_absolute_percentage_error", {})


class MeanSquaredLogarithmicError(Loss):
    """mean((log(p + 1) - log(t + 1))²) over the last axis."""
    __init__ = _keras_class(mean_squared_logarithmic_error, "mean_squared_logarithmic_error", {})


class Hinge(Loss):
    """mean(max(1 - t·p, 0)); 0/1 targets become -1/1."""
    __init__ = _keras_class(hinge, "hinge", {})


class SquaredHinge(Loss):
    """mean(max(1 - t·p, 0)²); 0/1 targets become -1/1."""
    __init__ = _keras_class(squared_hinge, "squared_hinge", {})


class Poisson(Loss):
    """mean(p - t·log(p + ε)) over the last axis."""
    __init__ = _keras_class(poisson, "poisson", {})


class CTC(Loss):
    """Keras' CTC loss: labels (batch, max_length) with 0 as blank and padding, logits (batch, time, classes)."""
    __init__ = _keras_class(ctc, "ctc", {})


LOSS_CLASSES = {cls.__name__: cls for cls in Loss.__subclasses__()}


def _weights(per_sample: Tensor, sample_weight):
    xp = get_array_module(per_sample.data)
    weight = xp.asarray(getattr(sample_weight, "data", sample_weight), dtype=per_sample.dtype)
    return weight.reshape(weight.shape + (1,) * (per_sample.ndim - weight.ndim))


def reduce_loss(per_sample: Tensor, sample_weight=None) -> Tensor:
    """Σ w·loss / N over every per-sample value (Keras' sum_over_batch_size)."""
    if sample_weight is None:
        return F.mean(per_sample)
    return F.div(F.sum(F.mul(per_sample, _weights(per_sample, sample_weight))), float(max(per_sample.size, 1)))


def get(identifier) -> Loss:
    """A Loss from a Keras name, a Loss, or a function (y_true, y_pred) -> per-sample Tensor."""
    if isinstance(identifier, Loss):
        return identifier
    if callable(identifier):
        return Loss(identifier, getattr(identifier, "__name__", "loss"))
    if isinstance(identifier, str) and isinstance(LOSS_CLASSES.get(identifier), type):
        return LOSS_CLASSES[identifier]()  # Keras' class names as strings: get("Huber") is Huber()
    if identifier in KERAS_ONLY_LOSSES:
        raise NotImplementedError(f"the Keras loss {identifier!r} is not supported by minidl; "
                                  f"supported: {', '.join(sorted(LOSSES))}")
    if identifier not in LOSSES:
        raise ValueError(f"unknown loss {identifier!r}; known: {', '.join(sorted(LOSSES))}")
    return Loss(LOSSES[identifier], LOSSES[identifier].__name__)
