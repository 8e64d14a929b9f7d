"""Metrics on plain arrays: accuracies, confusion matrix, precision/recall, edit distance, WER.

These are NumPy-side functions (CuPy arrays and Tensors are copied to NumPy first): they score
predictions, they are never differentiated. The accuracies return the mean over samples as a
float (weighted by ``sample_weight`` when given), so averaging per-batch values weighted by batch
size gives the epoch's value, as Keras' running mean does.

The stateful metric objects (``Precision()``, ``AUC()``, ``Mean()``, ... with update_state /
result / reset_state) live in ``minidl.metric_classes`` and are exported here, as in Keras.

``get(name)`` maps Keras' metric names to these functions, and ``resolve(name, loss)`` does what
Keras' ``compile`` does for "accuracy": it picks the accuracy that fits the loss (sparse
categorical for sparse_categorical_crossentropy, ...).
"""
from __future__ import annotations

from collections import namedtuple
from typing import Any, Callable, Sequence

import numpy as np

from minidl import backend
from minidl.metric_classes import (AUC, Accuracy, F1Score, Mean, MeanAbsoluteError,  # noqa: F401 (dl.metrics.X)
                                   MeanMetricWrapper, MeanSquaredError, Metric, Precision, Recall,
                                   SparseCategoricalAccuracy, SparseTopKCategoricalAccuracy,
                                   TopKCategoricalAccuracy)


def _numpy(x: Any) -> np.ndarray:
    if type(x).__name__ == "Tensor":
        x = x.data
    return backend.to_numpy(x)


def _mean(matches: np.ndarray, sample_weight=None) -> float:
    """Mean of per-sample values; with weights Σ w·m / Σ w (per-sample weights broadcast)."""
    matches = matches.astype(np.float64)
    if matches.size == 0:
        raise ValueError("metric of an empty batch: y_true and y_pred hold no samples")
    if sample_weight is None:
        return float(matches.mean())
    weight = _numpy(sample_weight).astype(np.float64)
    try:
        weight = np.broadcast_to(weight.reshape(weight.shape + (1,) * (matches.ndim - weight.ndim)),
                                 matches.shape)
    except ValueError:
        raise ValueError(f"sample_weight of shape {weight.shape} does not fit per-sample values of "
                         f"shape {matches.shape}") from None
    total = weight.sum()
    return float((weight * matches).sum() / total) if total else 0.0


# --- accuracies ---------------------------------------------------------------------------------
def sparse_categorical_accuracy(y_true, y_pred, sample_weight=None) -> float:
    """Fraction of samples whose integer label equals the arg-max of the class scores.

    Args:
        y_true: integer labels, shape (batch, ...) or (batch, ..., 1).
        y_pred: class scores (probabilities or logits), shape (batch, ..., num_classes).
    """
    y_true, y_pred = _numpy(y_true), _numpy(y_pred)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    if y_pred.ndim != y_true.ndim + 1 or y_pred.shape[:-1] != y_true.shape:
        raise ValueError(f"sparse_categorical_accuracy: expected labels of shape (batch, ...) and scores "
                         f"of shape (batch, ..., num_classes), got {y_true.shape} and {y_pred.shape}")
    return _mean(y_pred.argmax(axis=-1) == y_true, sample_weight)


def categorical_accuracy(y_true, y_pred, sample_weight=None) -> float:
    """Fraction of samples whose one-hot (or soft) target and scores share the arg-max.

    Args:
        y_true: one-hot targets, shape (batch, ..., num_classes).
        y_pred: class scores, the same shape.
    """
    y_true, y_pred = _numpy(y_true), _numpy(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"categorical_accuracy: y_true and y_pred must have the same shape "
                         f"(batch, ..., num_classes), got {y_true.shape} and {y_pred.shape}")
    return _mean(y_pred.argmax(axis=-1) == y_true.argmax(axis=-1), sample_weight)


def binary_accuracy(y_true, y_pred, threshold: float = 0.5, sample_weight=None) -> float:
    """Fraction of elements where (y_pred > threshold) equals the 0/1 target (Keras' rule).

    Args:
        y_true: 0/1 targets. y_pred: probabilities of class 1, the same shape.
    """
    y_true, y_pred = _numpy(y_true), _numpy(y_pred)
    if y_true.shape != y_pred.shape:
        if y_true.ndim + 1 == y_pred.ndim and y_pred.shape[-1] == 1:
            y_pred = y_pred[..., 0]
        else:
            raise ValueError(f"binary_accuracy: y_true and y_pred must have the same shape, "
                             f"got {y_true.shape} and {y_pred.shape}")
    matches = (y_pred > threshold) == (y_true > 0.5)
    if matches.ndim > 1:  # Keras averages over the last axis first, then over samples
        matches = matches.mean(axis=-1)
    return _mean(matches, sample_weight)


def accuracy(y_true, y_pred, sample_weight=None) -> float:
    """Fraction of correct predictions, with the form of ``y_pred`` deciding how to compare:

    * class scores, shape (batch, ..., num_classes) against integer labels (batch, ...) or
      (batch, ..., 1): sparse categorical accuracy (arg-max of the scores);
    * scores against one-hot targets of the same shape (last axis > 1): categorical accuracy;
    * one probability per sample (last axis 1, or floats of the labels' shape): binary accuracy;
    * integer predicted labels of the labels' shape: plain equality.
    """
    y_true, y_pred = _numpy(y_true), _numpy(y_pred)
    if y_pred.ndim == y_true.ndim + 1 or (y_pred.ndim == y_true.ndim and y_true.shape[-1:] == (1,)
                                          and y_pred.shape[-1] > 1):
        if y_pred.shape[-1] == 1 and y_pred.ndim == y_true.ndim + 1:
            return binary_accuracy(y_true, y_pred, sample_weight=sample_weight)
        return sparse_categorical_accuracy(y_true, y_pred, sample_weight)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"accuracy: cannot compare labels of shape {y_true.shape} with predictions "
                         f"of shape {y_pred.shape}")
    if y_pred.dtype.kind == "f":
        if y_pred.ndim >= 2 and y_pred.shape[-1] > 1:
            return categorical_accuracy(y_true, y_pred, sample_weight)
        return binary_accuracy(y_true, y_pred, sample_weight=sample_weight)
    return _mean(y_pred == y_true, sample_weight)


def mean_squared_error(y_true, y_pred, sample_weight=None) -> float:
    """mean((y_true - y_pred)²)."""
    diff = _numpy(y_pred).astype(np.float64) - _numpy(y_true)
    return _mean(diff * diff, sample_weight)


def mean_absolute_error(y_true, y_pred, sample_weight=None) -> float:
    """mean(|y_true - y_pred|)."""
    return _mean(np.abs(_numpy(y_pred).astype(np.float64) - _numpy(y_true)), sample_weight)


# --- confusion matrix, precision and recall -----------------------------------------------------
def _labels(y_true, y_pred, num_classes: int | None, where: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer label vectors from labels, scores (arg-max) or one-hot targets; checked."""
    y_true, y_pred = _numpy(y_true), _numpy(y_pred)
    if y_pred.ndim == y_true.ndim + 1:
        y_pred = y_pred.argmax(axis=-1)
    elif y_pred.ndim == y_true.ndim and y_pred.ndim >= 2 and y_pred.shape[-1] > 1 and y_pred.dtype.kind == "f":
        y_true, y_pred = y_true.argmax(axis=-1), y_pred.argmax(axis=-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{where}: labels of shape {y_true.shape} and predictions of shape "
                         f"{y_pred.shape} do not match")
    y_true, y_pred = y_true.reshape(-1), y_pred.reshape(-1)
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.dtype.kind not in "iub" and not np.array_equal(y, np.round(y))):
            raise ValueError(f"{where}: {name} must hold integer class labels, got {y.dtype} values")
    y_true, y_pred = y_true.astype(np.int64), y_pred.astype(np.int64)
    if num_classes is None:
        num_classes = int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        bad = y[(y < 0) | (y >= num_classes)]
        if bad.size:
            raise ValueError(f"{where}: {name} has label {int(bad[0])}, outside [0, {num_classes}) "
                             f"for num_classes={num_classes}")
    return y_true, y_pred, num_classes


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Counts of (true class, predicted class) pairs: row i, column j = how many samples of class
    i were predicted as j. ``y_pred`` may be labels or class scores (arg-max is taken).

    Returns:
        int64 array of shape (num_classes, num_classes); num_classes defaults to the largest
        label seen plus one.
    """
    y_true, y_pred, n = _labels(y_true, y_pred, num_classes, "confusion_matrix")
    # one bincount over the pair index true·n + pred: no loop over samples
    return np.bincount(y_true * n + y_pred, minlength=n * n).reshape(n, n)


PrecisionRecall = namedtuple("PrecisionRecall", ["precision", "recall", "f1"])


def precision_recall(y_true, y_pred, num_classes: int | None = None) -> PrecisionRecall:
    """Per-class precision = TP / (TP + FP), recall = TP / (TP + FN) and their harmonic mean F1.

    A class never predicted has precision 0, one never present has recall 0 (scikit-learn's
    ``zero_division=0``), so the arrays hold no NaN.

    Returns:
        (precision, recall, f1): float64 arrays of shape (num_classes,).
    """
    matrix = confusion_matrix(y_true, y_pred, num_classes).astype(np.float64)
    true_positive = np.diag(matrix)
    predicted = matrix.sum(axis=0)
    actual = matrix.sum(axis=1)
    precision = np.divide(true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0)
    recall = np.divide(true_positive, actual, out=np.zeros_like(true_positive), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(both), where=both > 0)
    return PrecisionRecall(precision, recall, f1)


# --- edit distance and error rates --------------------------------------------------------------
def _as_ids(reference: Sequence, hypothesis: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Both sequences as int arrays over one shared vocabulary (tokens may be any hashable)."""
    vocabulary: dict = {}
    ref = np.array([vocabulary.setdefault(t, len(vocabulary)) for t in reference], dtype=np.int64)
    hyp = np.array([vocabulary.setdefault(t, len(vocabulary)) for t in hypothesis], dtype=np.int64)
    return ref, hyp


def edit_distance(reference: Sequence, hypothesis: Sequence) -> int:
    """Levenshtein distance: the fewest substitutions, deletions and insertions that turn
    ``reference`` into ``hypothesis``. Tokens may be characters (pass strings), words or labels.

    Dynamic programming over rows D[i, j] (the distance between the first i reference tokens
    and the first j hypothesis tokens); each row is one vector step:
        t[j]    = min(D[i-1, j] + 1, D[i-1, j-1] + [ref_i ≠ hyp_j])    deletion, substitution
        D[i, j] = min over k ≤ j of (t[k] + j - k)                      insertions
                = j + cumulative-min(t[k] - k)
    """
    ref, hyp = _as_ids(reference, hypothesis)
    columns = np.arange(len(hyp) + 1)
    row = columns.copy()                                   # D[0, j] = j
    for i, token in enumerate(ref, start=1):
        t = np.empty_like(row)
        t[0] = i
        np.minimum(row[1:] + 1, row[:-1] + (hyp != token), out=t[1:])
        row = columns + np.minimum.accumulate(t - columns)
    return int(row[-1])


def _error_rate(references, hypotheses, split: Callable, where: str) -> float:
    if isinstance(references, str) or isinstance(hypotheses, str):
        if not (isinstance(references, str) and isinstance(hypotheses, str)):
            raise ValueError(f"{where}: give both references and hypotheses as strings, or both as lists")
        references, hypotheses = [references], [hypotheses]
    references, hypotheses = list(references), list(hypotheses)
    if len(references) != len(hypotheses):
        raise ValueError(f"{where}: {len(references)} references but {len(hypotheses)} hypotheses")
    edits = total = 0
    for reference, hypothesis in zip(references, hypotheses):
        reference, hypothesis = split(reference), split(hypothesis)
        edits += edit_distance(reference, hypothesis)
        total += len(reference)
    if total == 0:
        raise ValueError(f"{where}: the references hold no tokens, so the error rate is undefined")
    return edits / total


def word_error_rate(references, hypotheses) -> float:
    """WER = total word edits / total reference words, over all utterances together.

    Args:
        references, hypotheses: lists of utterances, each a string (split on whitespace) or a
            sequence of tokens; or one string each.
    """
    return _error_rate(references, hypotheses, lambda u: u.split() if isinstance(u, str) else list(u),
                       "word_error_rate")


def character_error_rate(references, hypotheses) -> float:
    """CER = total character edits / total reference characters (spaces count as characters).

    Args:
        references, hypotheses: lists of strings (or of label sequences); or one string each.
    """
    return _error_rate(references, hypotheses, list, "character_error_rate")


# --- names --------------------------------------------------------------------------------------
METRICS: dict[str, Callable] = {
    "accuracy": accuracy, "acc": accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "binary_accuracy": binary_accuracy,
    "mean_squared_error": mean_squared_error, "mse": mean_squared_error,
    "mean_absolute_error": mean_absolute_error, "mae": mean_absolute_error,
}

_ACCURACY_FOR_LOSS = {
    "sparse_categorical_crossentropy": sparse_categorical_accuracy,
    "categorical_crossentropy": categorical_accuracy,
    "binary_crossentropy": binary_accuracy,
}


# Keras names whose result is not a mean over samples: per-batch values averaged over an epoch
# would not be the metric, so compile refuses them (the objects work with update_state/result)
NOT_IN_COMPILE = ("auc", "precision", "recall", "f1_score", "fbeta_score")
TOP_K_NAMES = {"top_k_categorical_accuracy": TopKCategoricalAccuracy,
               "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy}


def per_batch(metric: Metric) -> Callable:
    """A metric object as compile's per-batch function ``f(y_true, y_pred) -> float``: exact for
    running means (the epoch's value is the batch-size-weighted mean of these, as fit computes)."""
    if not isinstance(metric, MeanMetricWrapper):
        raise NotImplementedError(f"the metric object {type(metric).__name__} is not supported in compile: its "
                                  f"result is not a mean over samples; call update_state()/result() on it yourself")
    prototype = type(metric).__new__(type(metric))
    prototype.__dict__.update(metric.__dict__)

    def batch_value(y_true, y_pred, sample_weight=None) -> float:
        prototype.reset_state()
        prototype.update_state(y_true, y_pred, sample_weight)
        return prototype.result()

    batch_value.__name__ = metric.name
    return batch_value


def get(identifier) -> Callable:
    """The metric function for a Keras name ("accuracy", "sparse_categorical_accuracy", "mse",
    ...), a metric object (a running mean, see ``per_batch``), or a callable ``f(y_true, y_pred)
    -> float`` returned as is."""
    if isinstance(identifier, Metric):
        return per_batch(identifier)
    if callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in METRICS:
        return METRICS[identifier.lower()]
    if isinstance(identifier, str) and identifier.lower() in TOP_K_NAMES:
        return per_batch(TOP_K_NAMES[identifier.lower()]())
    if isinstance(identifier, str) and identifier.lower() in NOT_IN_COMPILE:
        raise NotImplementedError(f"the metric {identifier!r} is not supported in compile by minidl (its result is "
                                  "not a mean over batches); use the objects dl.metrics.AUC, Precision, Recall or "
                                  "F1Score with update_state()/result()")
    raise ValueError(f"unknown metric {identifier!r}; known: {', '.join(METRICS)}")


def resolve(identifier, loss=None) -> tuple[Callable, str]:
    """(function, display name) for a metric given to ``compile``, as Keras resolves it.

    "accuracy"/"acc" follows the loss: sparse categorical accuracy with
    sparse_categorical_crossentropy, categorical with categorical_crossentropy, binary with
    binary_crossentropy, and otherwise ``accuracy``, which decides from the arrays' shapes. The
    display name is the string given (Keras logs "accuracy", "acc", ...), or a function's name.
    """
    if isinstance(identifier, str):
        if identifier.lower() in ("accuracy", "acc"):
            loss_name = loss if isinstance(loss, str) else getattr(loss, "__name__", None)
            function = _ACCURACY_FOR_LOSS.get(str(loss_name).lower(), accuracy)
            return function, identifier
        return get(identifier), identifier
    function = get(identifier)
    return function, getattr(function, "__name__", type(function).__name__)
