"""Losses, each giving one value per sample (Keras' per-sample losses, before reduction).

Probabilities are clipped to [ε, 1 - ε] with ε = 1e-7 before the log, as Keras does, so a
confident wrong answer gives a large finite loss, not inf; the gradient is the clipped formula's
too (zero where the clip is active), so a probability that underflowed to exactly 0 gives a zero
gradient, as in Keras, not 0/0. The cross-entropies first rescale the probabilities to sum to 1
over the last axis, as Keras 3 does (keras/src/backend/*/nn.py). With ``from_logits=True`` the
softmax (or sigmoid) is fused into the loss, which is both exact and stable.
"""
from __future__ import annotations

from minidl.backend import get_array_module, to_numpy
from minidl.function import Function
from minidl.functional import activation, arithmetic, reduction
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


def categorical_crossentropy(y_true, y_pred, from_logits: bool = False) -> Tensor:
    """-Σ_c y_true_c · log p_c over the last axis. Shapes: both (..., classes) -> (...).

    Without logits, p is y_pred rescaled to sum to 1 and clipped to [ε, 1 - ε], as Keras does.
    """
    y_pred = as_tensor(y_pred)
    y_true = as_tensor(y_true)
    _same_shape("categorical_crossentropy", y_true, y_pred)
    if from_logits:
        log_p = activation.log_softmax(y_pred)
    else:
        p = arithmetic.div(y_pred, reduction.sum(y_pred, axis=-1, keepdims=True))
        log_p = arithmetic.log(arithmetic.clip(p, EPSILON, 1 - EPSILON))
    return arithmetic.neg(reduction.sum(arithmetic.mul(y_true, log_p), axis=-1))


def binary_crossentropy(y_true, y_pred, from_logits: bool = False) -> Tensor:
    """Mean over the last axis of -(y·log p + (1-y)·log(1-p)). Shapes: (..., k) -> (...).

    With logits z the stable form max(z, 0) - z·y + log(1 + e^(-|z|)) is used.
    """
    y_pred = as_tensor(y_pred)
    y_true = as_tensor(y_true)
    _same_shape("binary_crossentropy", y_true, y_pred)
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
    y_pred = as_tensor(y_pred)
    y_true = as_tensor(y_true)
    _same_shape("mean_squared_error", y_true, y_pred)
    diff = arithmetic.sub(y_pred, y_true)
    return reduction.mean(arithmetic.mul(diff, diff), axis=-1)


def _same_shape(where: str, y_true: Tensor, y_pred: Tensor) -> None:
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{where}: y_true has shape {y_true.shape}, y_pred has shape {y_pred.shape}; "
                         "they must match (for integer labels use sparse_categorical_crossentropy)")
