"""Losses, each giving one value per sample (Keras' per-sample losses, before reduction).

Probabilities are clipped to [ε, 1 - ε] with ε = 1e-7 before the log, as Keras does, so a
confident wrong answer gives a large finite loss, not inf; the gradient is the clipped formula's
too (zero where the clip is active), so a probability that underflowed to exactly 0 gives a zero
gradient, as in Keras, not 0/0. The cross-entropies first rescale the probabilities to sum to 1
over the last axis, as Keras 3 does (keras/src/backend/*/nn.py). With ``from_logits=True`` the
softmax (or sigmoid) is fused into the loss, which is both exact and stable.

Targets of one axis fewer than the predictions, where the predictions' last axis is 1 (labels
(n,) against a sigmoid output (n, 1)), are given that axis, as Keras'
``squeeze_or_expand_to_same_rank`` does; the regression losses below follow Keras' formulas
(keras/src/losses/losses.py) and are built from differentiable primitives.
"""
from __future__ import annotations

import math

from minidl.backend import get_array_module, to_numpy
from minidl.function import Function
from minidl.functional import activation, arithmetic, reduction, shape
from minidl.tensor import Tensor, as_tensor

EPSILON = 1e-7  # Keras' backend epsilon


class SparseCrossentropyFromLogits(Function):
    """loss_n = -log softmax(z_n)[y_n] = logsumexp(z_n) - z_n[y_n], for integer labels y.

    Backward: ∂loss_n/∂z_n = softmax(z_n) - onehot(y_n): one subtraction, no Jacobian.
    Shapes: logits (..., classes), labels (...) int; output (...).
    """

    def __init__(self, labels):
        self.labels = labels

    def forward(self, logits):
        xp = get_array_module(logits)
        shifted = logits - logits.max(axis=-1, keepdims=True)
        log_sum = xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))
        self.log_probs = shifted - log_sum
        return -xp.take_along_axis(self.log_probs, self.labels[..., None], axis=-1)[..., 0]

    def backward(self, gy):
        xp = get_array_module(gy)
        gx = xp.exp(self.log_probs)
        picked = xp.take_along_axis(gx, self.labels[..., None], axis=-1) - 1
        xp.put_along_axis(gx, self.labels[..., None], picked, axis=-1)
        return gx * gy[..., None]


class SparseCrossentropy(Function):
    """loss_n = -log clip(q_n, ε, 1 - ε), q_n = p_n[y_n] / S_n, S_n = Σ_c p_n[c], for
    probabilities p and integer labels y: Keras 3's formula, rescale then clip.

    Backward, with δ_c = 1 where c = y_n:

        ∂loss_n/∂p_n[c] = g_n · (δ_c - q_n) / S_n,   g_n = -1 / q_n inside [ε, 1 - ε], else 0

    (= -1/p_n[y_n] + 1/S_n at the label, 1/S_n elsewhere; through a softmax the 1/S_n term
    cancels). Outside the clip range the gradient is 0, never 0/0: a softmax probability that
    underflowed to exactly 0 stops that sample's gradient, as in Keras, instead of making it NaN.
    Shapes: probs (..., classes), labels (...) int; output (...).
    """

    def __init__(self, labels):
        self.labels = labels

    def forward(self, probs):
        xp = get_array_module(probs)
        self.shape = probs.shape
        self.total = probs.sum(axis=-1)
        self.q = xp.take_along_axis(probs, self.labels[..., None], axis=-1)[..., 0] / self.total
        return -xp.log(xp.clip(self.q, EPSILON, 1 - EPSILON))

    def backward(self, gy):
        xp = get_array_module(gy)
        inside = (self.q >= EPSILON) & (self.q <= 1 - EPSILON)
        # divide by the clipped q: where the clip is active inside is 0, and 0/0 would be NaN
        g_over_total = -gy * inside / xp.clip(self.q, EPSILON, 1 - EPSILON) / self.total
        gx = xp.broadcast_to((-g_over_total * self.q)[..., None], self.shape).copy()
        xp.put_along_axis(gx, self.labels[..., None], (g_over_total * (1 - self.q))[..., None], axis=-1)
        return gx


def check_labels(labels, num_classes: int, where: str):
    """Integer labels as an array of the logits' module; a clear error for one out of range."""
    labels = getattr(labels, "data", labels)
    xp = get_array_module(labels)
    labels = xp.asarray(labels)
    if labels.dtype.kind == "f":
        if labels.size and not bool(xp.all(labels == xp.round(labels))):
            raise ValueError(f"{where}: labels must be whole numbers, got {to_numpy(labels).ravel()[:5]}")
        labels = labels.astype("int64")
    elif labels.dtype.kind not in "iu":
        raise TypeError(f"{where}: labels must be integers, got dtype {labels.dtype}")
    if labels.size:
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise ValueError(f"{where}: label {bad} is out of range for {num_classes} classes "
                             f"(expected 0 to {num_classes - 1})")
    return labels.astype("int64", copy=False)


def sparse_categorical_crossentropy(labels, y_pred, from_logits: bool = False) -> Tensor:
    """Cross-entropy against integer labels. Shapes: labels (...), y_pred (..., classes) -> (...).

    Without logits, y_pred is rescaled to sum to 1 and clipped to [ε, 1 - ε], as Keras does.
    """
    y_pred = as_tensor(y_pred)
    labels = check_labels(labels, y_pred.shape[-1], "sparse_categorical_crossentropy")
    if labels.ndim == y_pred.ndim and labels.shape[-1] == 1:
        labels = labels[..., 0]  # Keras accepts (batch, 1) labels
    if tuple(labels.shape) != y_pred.shape[:-1]:
        raise ValueError(f"sparse_categorical_crossentropy: labels of shape {tuple(labels.shape)} do not "
                         f"match predictions of shape {y_pred.shape} (expected {y_pred.shape[:-1]})")
    labels = get_array_module(y_pred.data).asarray(labels)
    op = SparseCrossentropyFromLogits if from_logits else SparseCrossentropy
    return op(labels).apply(y_pred)


def categorical_crossentropy(y_true, y_pred, from_logits: bool = False, label_smoothing: float = 0.0) -> Tensor:
    """-Σ_c y_true_c · log p_c over the last axis. Shapes: both (..., classes) -> (...).

    Without logits, p is y_pred rescaled to sum to 1 and clipped to [ε, 1 - ε], as Keras does.
    ``label_smoothing`` s replaces the targets by y·(1 - s) + s / classes first.
    """
    y_true, y_pred = _targets_and_predictions("categorical_crossentropy", y_true, y_pred)
    y_true = _smooth(y_true, label_smoothing, 1.0 / y_pred.shape[-1], "categorical_crossentropy")
    if from_logits:
        log_p = activation.log_softmax(y_pred)
    else:
        p = arithmetic.div(y_pred, reduction.sum(y_pred, axis=-1, keepdims=True))
        log_p = arithmetic.log(arithmetic.clip(p, EPSILON, 1 - EPSILON))
    return arithmetic.neg(reduction.sum(arithmetic.mul(y_true, log_p), axis=-1))


def binary_crossentropy(y_true, y_pred, from_logits: bool = False, label_smoothing: float = 0.0) -> Tensor:
    """Mean over the last axis of -(y·log p + (1-y)·log(1-p)). Shapes: (..., k) -> (...);
    labels (n,) against predictions (n, 1) work, as in Keras.

    With logits z the stable form max(z, 0) - z·y + log(1 + e^(-|z|)) is used.
    ``label_smoothing`` s replaces the targets by y·(1 - s) + s/2 first.
    """
    y_true, y_pred = _targets_and_predictions("binary_crossentropy", y_true, y_pred)
    y_true = _smooth(y_true, label_smoothing, 0.5, "binary_crossentropy")
    if from_logits:
        z = y_pred
        softplus = arithmetic.log(arithmetic.add(1.0, arithmetic.exp(arithmetic.neg(arithmetic.abs(z)))))
        per_element = arithmetic.add(arithmetic.sub(activation.relu(z), arithmetic.mul(z, y_true)), softplus)
    else:
        p = arithmetic.clip(y_pred, EPSILON, 1 - EPSILON)
        one = 1.0
        per_element = arithmetic.neg(arithmetic.add(
            arithmetic.mul(y_true, arithmetic.log(p)),
            arithmetic.mul(arithmetic.sub(one, y_true), arithmetic.log(arithmetic.sub(one, p)))))
    return reduction.mean(per_element, axis=-1)


def mean_squared_error(y_true, y_pred) -> Tensor:
    """Mean over the last axis of (y_true - y_pred)². Shapes: (..., k) -> (...)."""
    y_true, y_pred = _targets_and_predictions("mean_squared_error", y_true, y_pred)
    diff = arithmetic.sub(y_pred, y_true)
    return reduction.mean(arithmetic.mul(diff, diff), axis=-1)


def mean_absolute_error(y_true, y_pred) -> Tensor:
    """Mean over the last axis of |y_true - y_pred|. Shapes: (..., k) -> (...)."""
    y_true, y_pred = _targets_and_predictions("mean_absolute_error", y_true, y_pred)
    return reduction.mean(arithmetic.abs(arithmetic.sub(y_pred, y_true)), axis=-1)


def huber(y_true, y_pred, delta: float = 1.0) -> Tensor:
    """Mean over the last axis of ½e² where |e| ≤ δ, else δ·|e| - ½δ² (e = y_pred - y_true).
    Shapes: (..., k) -> (...)."""
    if not delta > 0:
        raise ValueError(f"huber: delta must be > 0, got {delta!r}")
    y_true, y_pred = _targets_and_predictions("huber", y_true, y_pred)
    error = arithmetic.sub(y_pred, y_true)
    size = arithmetic.abs(error)
    quadratic = arithmetic.mul(0.5, arithmetic.mul(error, error))
    linear = arithmetic.sub(arithmetic.mul(delta, size), 0.5 * delta * delta)
    return reduction.mean(arithmetic.where(size.data <= delta, quadratic, linear), axis=-1)


def log_cosh(y_true, y_pred) -> Tensor:
    """Mean over the last axis of log cosh(e), e = y_pred - y_true, computed as
    e + softplus(-2e) - log 2 (cosh overflows for |e| > 710). Shapes: (..., k) -> (...)."""
    y_true, y_pred = _targets_and_predictions("log_cosh", y_true, y_pred)
    error = arithmetic.sub(y_pred, y_true)
    per_element = arithmetic.sub(arithmetic.add(error, activation.softplus(arithmetic.mul(-2.0, error))),
                                 math.log(2.0))
    return reduction.mean(per_element, axis=-1)


def kl_divergence(y_true, y_pred) -> Tensor:
    """Σ over the last axis of t·log(t / p), with t and p clipped to [ε, 1]. Shapes: (..., k) -> (...)."""
    y_true, y_pred = _targets_and_predictions("kl_divergence", y_true, y_pred)
    t = arithmetic.clip(y_true, EPSILON, 1.0)
    p = arithmetic.clip(y_pred, EPSILON, 1.0)
    return reduction.sum(arithmetic.mul(t, arithmetic.log(arithmetic.div(t, p))), axis=-1)


def _l2_normalize(x: Tensor, axis: int) -> Tensor:
    """x / max(‖x‖, ε) along ``axis`` (Keras' normalize; the square sum is floored before the
    root, so a zero vector has gradient 0, not NaN)."""
    square_sum = reduction.sum(arithmetic.mul(x, x), axis=axis, keepdims=True)
    return arithmetic.div(x, arithmetic.sqrt(arithmetic.clip(square_sum, EPSILON * EPSILON, float("inf"))))


def cosine_similarity(y_true, y_pred, axis: int = -1) -> Tensor:
    """-Σ_axis (t/‖t‖)·(p/‖p‖): -1 for the same direction, 0 for orthogonal (Keras' sign).
    Shapes: (..., k) -> (...)."""
    y_true, y_pred = _targets_and_predictions("cosine_similarity", y_true, y_pred)
    similarity = reduction.sum(arithmetic.mul(_l2_normalize(y_true, axis), _l2_normalize(y_pred, axis)), axis=axis)
    return arithmetic.neg(similarity)


def mean_absolute_percentage_error(y_true, y_pred) -> Tensor:
    """100 · mean over the last axis of |(t - p) / max(|t|, ε)|. Shapes: (..., k) -> (...)."""
    y_true, y_pred = _targets_and_predictions("mean_absolute_percentage_error", y_true, y_pred)
    xp = get_array_module(y_true.data)
    scale = xp.maximum(xp.abs(y_true.data), EPSILON)  # of the targets: a constant
    ratio = arithmetic.div(arithmetic.sub(y_true, y_pred), scale)
    return arithmetic.mul(100.0, reduction.mean(arithmetic.abs(ratio), axis=-1))


def mean_squared_logarithmic_error(y_true, y_pred) -> Tensor:
    """Mean over the last axis of (log(max(p, ε) + 1) - log(max(t, ε) + 1))². Shapes: (..., k) -> (...)."""
    y_true, y_pred = _targets_and_predictions("mean_squared_logarithmic_error", y_true, y_pred)
    inf = float("inf")
    difference = arithmetic.sub(arithmetic.log(arithmetic.add(arithmetic.clip(y_pred, EPSILON, inf), 1.0)),
                                arithmetic.log(arithmetic.add(arithmetic.clip(y_true, EPSILON, inf), 1.0)))
    return reduction.mean(arithmetic.mul(difference, difference), axis=-1)


def _hinge_targets(y_true: Tensor) -> Tensor:
    """Keras' rule: targets that are all 0 or 1 become -1 or 1; others are used as given."""
    xp = get_array_module(y_true.data)
    if bool(xp.all((y_true.data == 0) | (y_true.data == 1))):
        return as_tensor(2.0 * y_true.data - 1.0)
    return y_true


def hinge(y_true, y_pred) -> Tensor:
    """Mean over the last axis of max(1 - t·p, 0), targets t in {-1, 1} (or {0, 1}, converted).
    Shapes: (..., k) -> (...)."""
    y_true, y_pred = _targets_and_predictions("hinge", y_true, y_pred)
    margin = arithmetic.sub(1.0, arithmetic.mul(_hinge_targets(y_true), y_pred))
    return reduction.mean(activation.relu(margin), axis=-1)


def squared_hinge(y_true, y_pred) -> Tensor:
    """Mean over the last axis of max(1 - t·p, 0)². Shapes: (..., k) -> (...)."""
    y_true, y_pred = _targets_and_predictions("squared_hinge", y_true, y_pred)
    margin = activation.relu(arithmetic.sub(1.0, arithmetic.mul(_hinge_targets(y_true), y_pred)))
    return reduction.mean(arithmetic.mul(margin, margin), axis=-1)


def poisson(y_true, y_pred) -> Tensor:
    """Mean over the last axis of p - t·log(p + ε). Shapes: (..., k) -> (...)."""
    y_true, y_pred = _targets_and_predictions("poisson", y_true, y_pred)
    return reduction.mean(arithmetic.sub(y_pred, arithmetic.mul(y_true, arithmetic.log(
        arithmetic.add(y_pred, EPSILON)))), axis=-1)


def _smooth(y_true: Tensor, label_smoothing: float, uniform: float, where: str) -> Tensor:
    """y·(1 - s) + s·uniform: Keras' label smoothing (uniform = 1/classes, or ½ for binary)."""
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"{where}: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    if not label_smoothing:
        return y_true
    return arithmetic.add(arithmetic.mul(y_true, 1.0 - label_smoothing), label_smoothing * uniform)


def _targets_and_predictions(where: str, y_true, y_pred) -> tuple[Tensor, Tensor]:
    """Both as Tensors of one shape: targets in the predictions' float type, given the trailing
    axis of 1 when they lack it (Keras' squeeze_or_expand_to_same_rank); else a clear error."""
    y_pred = as_tensor(y_pred)
    y_true = as_tensor(y_true)
    if y_true.ndim + 1 == y_pred.ndim and y_pred.shape[-1:] == (1,):
        y_true = shape.reshape(y_true, y_true.shape + (1,))
    elif y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1:] == (1,):
        y_true = shape.reshape(y_true, y_true.shape[:-1])
    if y_true.dtype != y_pred.dtype and y_pred.dtype.kind == "f" and not y_true.requires_grad:
        y_true = as_tensor(y_true.data.astype(y_pred.dtype))
    _same_shape(where, y_true, y_pred)
    return y_true, y_pred


def _same_shape(where: str, y_true: Tensor, y_pred: Tensor) -> None:
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{where}: y_true has shape {y_true.shape}, y_pred has shape {y_pred.shape}; "
                         "they must match (for integer labels use sparse_categorical_crossentropy)")
