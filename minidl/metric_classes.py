"""Stateful metric objects with Keras' interface: ``update_state``, ``result``, ``reset_state``.

    m = dl.metrics.Precision()
    for y, p in batches:
        m.update_state(y, p)          # accumulates counts (sample weights optional)
    m.result()                        # over everything seen since the last reset_state()

``m(y, p)`` updates and returns the result, as Keras. Two kinds: running weighted means of a
per-sample value (Mean, Accuracy, SparseCategoricalAccuracy, the top-k accuracies, MSE, MAE),
whose result is Σ w·v / Σ w; and confusion counts (Precision, Recall, F1Score, AUC), whose
result is a formula of the summed counts. Everything is NumPy on the CPU, in float64.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from minidl import backend

EPSILON = 1e-7  # Keras' backend epsilon, in F1Score's divisions


def as_numpy(x: Any) -> np.ndarray:
    """A Tensor, CuPy or NumPy array (or a list) as a NumPy array."""
    return backend.to_numpy(getattr(x, "data", x) if type(x).__name__ == "Tensor" else x)


def _same_rank(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keras' squeeze_or_expand_to_same_rank: a trailing axis of 1 is dropped from the longer one."""
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    elif y_pred.ndim == y_true.ndim + 1 and y_pred.shape[-1] == 1:
        y_pred = y_pred[..., 0]
    return y_true, y_pred


class Metric:
    """Base: a name and Keras' three methods; ``__call__`` updates then returns the result."""

    def __init__(self, name: str | None = None, dtype=None):
        self.name = name or _snake(type(self).__name__)
        self.reset_state()

    def reset_state(self) -> None:
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def __call__(self, y_true, y_pred, sample_weight=None):
        self.update_state(y_true, y_pred, sample_weight)
        return self.result()

    def get_config(self) -> dict:
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


class Mean(Metric):
    """The weighted mean of the samples given: Σ w·v / Σ w over samples (see update_state)."""

    def reset_state(self):
        self.total, self.count = 0.0, 0.0

    def update_state(self, values, sample_weight=None):
        """Keras' rule: values beyond the weights' axes are averaged first, then each sample's
        mean of w·v adds to the total and its mean weight to the count (1 a sample unweighted)."""
        values = np.atleast_1d(as_numpy(values).astype(np.float64))
        if sample_weight is None:
            weight = np.ones(values.shape[:1])
        else:
            weight = np.atleast_1d(as_numpy(sample_weight).astype(np.float64))
            if values.ndim > weight.ndim:
                values = values.mean(axis=tuple(range(weight.ndim, values.ndim)))
            try:
                weight = np.broadcast_to(weight, values.shape)
            except ValueError:
                raise ValueError(f"{self.name}: sample_weight of shape {weight.shape} does not fit values of "
                                 f"shape {values.shape}") from None
            values = values * weight
        axes = tuple(range(1, values.ndim))
        self.total += float(values.mean(axis=axes).sum())
        self.count += float(weight.mean(axis=tuple(range(1, weight.ndim))).sum())

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0

    def __call__(self, values, sample_weight=None):
        self.update_state(values, sample_weight)
        return self.result()


class MeanMetricWrapper(Mean):
    """The running weighted mean of ``per_sample(y_true, y_pred)``."""

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        super().update_state(self.per_sample(as_numpy(y_true), as_numpy(y_pred)), sample_weight)

    def __call__(self, y_true, y_pred, sample_weight=None):
        self.update_state(y_true, y_pred, sample_weight)
        return self.result()


class Accuracy(MeanMetricWrapper):
    """How often predictions equal labels, elementwise (no arg-max: give predicted labels)."""

    def per_sample(self, y_true, y_pred):
        y_true, y_pred = _same_rank(y_true, y_pred)
        return (y_true == y_pred).astype(np.float64)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the arg-max of the scores (..., classes) equals the integer label (...)."""

    def per_sample(self, y_true, y_pred):
        if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
            y_true = y_true[..., 0]
        return (y_pred.argmax(axis=-1) == y_true).astype(np.float64)


def _in_top_k(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Whether each label's score is among the k largest (ties with the k-th count, as Keras on torch)."""
    k = min(k, scores.shape[-1])
    kth = -np.sort(-scores, axis=-1)[..., k - 1]
    labelled = np.take_along_axis(scores, labels.astype(np.int64)[..., None], axis=-1)[..., 0]
    return (labelled >= kth).astype(np.float64)


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer label is among the k highest scores (Keras' default k = 5)."""

    def __init__(self, k: int = 5, name: str = "sparse_top_k_categorical_accuracy", dtype=None,
                 from_sorted_ids: bool = False):
        if from_sorted_ids:
            raise NotImplementedError("SparseTopKCategoricalAccuracy: from_sorted_ids is not supported by minidl")
        self.k = int(k)
        super().__init__(name=name)

    def per_sample(self, y_true, y_pred):
        if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
            y_true = y_true[..., 0]
        return _in_top_k(y_pred, y_true, self.k)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot target's class is among the k highest scores (default k = 5)."""

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy", dtype=None):
        self.k = int(k)
        super().__init__(name=name)

    def per_sample(self, y_true, y_pred):
        return _in_top_k(y_pred, y_true.argmax(axis=-1), self.k)


class MeanSquaredError(MeanMetricWrapper):
    """The running mean of mean((y_true - y_pred)²) over the last axis."""

    def per_sample(self, y_true, y_pred):
        y_true, y_pred = _same_rank(y_true, y_pred)
        return ((y_pred.astype(np.float64) - y_true) ** 2).mean(axis=-1)


class MeanAbsoluteError(MeanMetricWrapper):
    """The running mean of mean(|y_true - y_pred|) over the last axis."""

    def per_sample(self, y_true, y_pred):
        y_true, y_pred = _same_rank(y_true, y_pred)
        return np.abs(y_pred.astype(np.float64) - y_true).mean(axis=-1)


# --- confusion counts ---------------------------------------------------------------------------
class _Confusion(Metric):
    """Weighted TP, FP, TN, FN at each threshold, for probabilities in [0, 1] (y_pred > t is positive)."""

    def __init__(self, thresholds, class_id: int | None = None, name: str | None = None):
        self.thresholds = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
        self.class_id = class_id
        super().__init__(name=name)

    def reset_state(self):
        n = len(self.thresholds)
        self.true_positives, self.false_positives = np.zeros(n), np.zeros(n)
        self.true_negatives, self.false_negatives = np.zeros(n), np.zeros(n)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = _same_rank(as_numpy(y_true), as_numpy(y_pred).astype(np.float64))
        if y_true.shape != y_pred.shape:
            raise ValueError(f"{self.name}: y_true of shape {y_true.shape} and y_pred of shape {y_pred.shape} "
                             f"must match")
        if y_pred.size and (y_pred.min() < 0 or y_pred.max() > 1):
            raise ValueError(f"{self.name}: predictions must be probabilities in [0, 1], got values in "
                             f"[{y_pred.min():.3g}, {y_pred.max():.3g}]")
        weight = np.ones_like(y_pred) if sample_weight is None else np.broadcast_to(
            (w := as_numpy(sample_weight).astype(np.float64)).reshape(w.shape + (1,) * (y_pred.ndim - w.ndim)),
            y_pred.shape)
        if self.class_id is not None:
            y_true, y_pred, weight = y_true[..., self.class_id], y_pred[..., self.class_id], weight[..., self.class_id]
        positive = (y_true.reshape(-1) > 0.5)
        weight = weight.reshape(-1)
        predicted = y_pred.reshape(-1)[None, :] > self.thresholds[:, None]    # (thresholds, values)
        self.true_positives += (predicted & positive) @ weight
        self.false_positives += (predicted & ~positive) @ weight
        self.true_negatives += (~predicted & ~positive) @ weight
        self.false_negatives += (~predicted & positive) @ weight


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b, 0 where b is 0 (Keras' divide_no_nan)."""
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b != 0)


def _one_or_list(values: np.ndarray, thresholds):
    return float(values[0]) if np.ndim(thresholds) == 0 else [float(v) for v in values]


class Precision(_Confusion):
    """TP / (TP + FP) of y_pred > thresholds (default 0.5); a list of thresholds gives a list."""

    def __init__(self, thresholds=None, top_k=None, class_id=None, name: str = "precision", dtype=None):
        if top_k is not None:
            raise NotImplementedError(f"{type(self).__name__}: top_k is not supported by minidl")
        self.thresholds_arg = 0.5 if thresholds is None else thresholds
        super().__init__(self.thresholds_arg, class_id, name)

    def result(self):
        return _one_or_list(_divide(self.true_positives, self.true_positives + self.false_positives),
                            self.thresholds_arg)


class Recall(Precision):
    """TP / (TP + FN) of y_pred > thresholds (default 0.5)."""

    def __init__(self, thresholds=None, top_k=None, class_id=None, name: str = "recall", dtype=None):
        super().__init__(thresholds, top_k, class_id, name)

    def result(self):
        return _one_or_list(_divide(self.true_positives, self.true_positives + self.false_negatives),
                            self.thresholds_arg)


class AUC(_Confusion):
    """Area under the ROC or precision-recall curve, from counts at ``num_thresholds`` evenly
    spaced thresholds (plus -ε and 1 + ε at the ends), summed as Keras does: trapezoids
    ("interpolation"), or the lower ("minoring") or upper ("majoring") rectangles; PR with
    interpolation uses Davis & Goadrich's interpolation of precision, as Keras."""

    def __init__(self, num_thresholds: int = 200, curve: str = "ROC", summation_method: str = "interpolation",
                 name: str = "auc", dtype=None, thresholds=None, multi_label: bool = False, num_labels=None,
                 label_weights=None, from_logits: bool = False):
        if thresholds is not None or multi_label or label_weights is not None or from_logits:
            raise NotImplementedError("AUC: thresholds, multi_label, label_weights and from_logits are not "
                                      "supported by minidl")
        if curve.upper() not in ("ROC", "PR"):
            raise NotImplementedError(f"AUC: curve {curve!r} is not supported by minidl; give 'ROC' or 'PR'")
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise ValueError(f"AUC: summation_method must be interpolation, minoring or majoring, got "
                             f"{summation_method!r}")
        if num_thresholds <= 1:
            raise ValueError(f"AUC: num_thresholds must be > 1, got {num_thresholds}")
        self.num_thresholds, self.curve, self.summation_method = num_thresholds, curve.upper(), summation_method
        inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        super().__init__([0.0 - EPSILON] + inner + [1.0 + EPSILON], None, name)

    def _interpolated_pr_auc(self) -> float:
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _divide(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        ratio = np.where((p[:-1] > 0) & (p[1:] > 0), _divide(p[:-1], np.maximum(p[1:], 0)), 1.0)
        return float(_divide(slope * (dtp + intercept * np.log(ratio)), np.maximum(tp[1:] + fn[1:], 0)).sum())

    def result(self) -> float:
        tp, fp, tn, fn = self.true_positives, self.false_positives, self.true_negatives, self.false_negatives
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolated_pr_auc()
        recall = _divide(tp, tp + fn)
        x, y = (_divide(fp, fp + tn), recall) if self.curve == "ROC" else (recall, _divide(tp, tp + fp))
        pairs = {"interpolation": (y[:-1] + y[1:]) / 2, "minoring": np.minimum(y[:-1], y[1:]),
                 "majoring": np.maximum(y[:-1], y[1:])}
        return float(((x[:-1] - x[1:]) * pairs[self.summation_method]).sum())


class F1Score(Metric):
    """F1 per class (or averaged) from TP, FP, FN summed over the batch axis, as Keras' F1Score.

    Predictions count as positive where y_pred > threshold, or, with threshold=None, where
    they are the row's maximum (and nonzero). precision = TP/(TP + FP + ε), recall = TP/(TP +
    FN + ε), F1 = 2·p·r/(p + r + ε). average: None (one F1 per class), "micro" (counts summed
    over classes first), "macro" (mean of the classes' F1), "weighted" (weighted by support).
    Shapes: y_true, y_pred (batch, classes).
    """

    def __init__(self, average: str | None = None, threshold: float | None = None, name: str = "f1_score",
                 dtype=None):
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(f"F1Score: average must be None, 'micro', 'macro' or 'weighted', got {average!r}")
        self.average, self.threshold = average, threshold
        super().__init__(name=name)

    def reset_state(self):
        self.true_positives = self.false_positives = self.false_negatives = self.support = 0.0

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = as_numpy(y_true).astype(np.float64), as_numpy(y_pred).astype(np.float64)
        if y_true.ndim != 2 or y_true.shape != y_pred.shape:
            raise ValueError(f"{self.name}: y_true and y_pred must both be (batch, classes), got {y_true.shape} "
                             f"and {y_pred.shape}")
        if self.threshold is None:
            predicted = (y_pred >= y_pred.max(axis=-1, keepdims=True)) & (np.abs(y_pred) > 1e-9)
        else:
            predicted = y_pred > self.threshold
        predicted = predicted.astype(np.float64)
        weight = np.ones((len(y_true), 1)) if sample_weight is None else as_numpy(sample_weight).reshape(-1, 1)
        axis = None if self.average == "micro" else 0
        self.true_positives = self.true_positives + (weight * predicted * y_true).sum(axis=axis)
        self.false_positives = self.false_positives + (weight * predicted * (1 - y_true)).sum(axis=axis)
        self.false_negatives = self.false_negatives + (weight * (1 - predicted) * y_true).sum(axis=axis)
        self.support = self.support + (weight * y_true).sum(axis=axis)

    def result(self):
        tp = np.asarray(self.true_positives, dtype=np.float64)
        precision = tp / (tp + self.false_positives + EPSILON)
        recall = tp / (tp + self.false_negatives + EPSILON)
        f1 = 2 * precision * recall / (precision + recall + EPSILON)
        if self.average == "weighted":
            return float((f1 * self.support / (np.sum(self.support) + EPSILON)).sum())
        if self.average is not None:
            return float(np.mean(f1))
        return f1


METRIC_CLASSES = {cls.__name__: cls for cls in (Mean, Accuracy, SparseCategoricalAccuracy,
                                                SparseTopKCategoricalAccuracy, TopKCategoricalAccuracy,
                                                MeanSquaredError, MeanAbsoluteError, Precision, Recall,
                                                F1Score, AUC)}
