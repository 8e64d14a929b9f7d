"""Activations: tanh, sigmoid, relu, leaky_relu, elu, softmax, log_softmax."""
from __future__ import annotations

from minidl.backend import get_array_module
from minidl.function import Function
from minidl.tensor import Tensor


class Tanh(Function):
    """y = tanh(x).  Backward: ∂L/∂x = ∂L/∂y · (1 - y²)."""

    def forward(self, x):
        self.y = get_array_module(x).tanh(x)
        return self.y

    def backward(self, gy):
        return gy * (1 - self.y * self.y)


class Sigmoid(Function):
    """Logistic sigmoid: y = σ(x) = 1 / (1 + exp(-x)).  Backward: ∂L/∂x = ∂L/∂y · y · (1 - y)."""

    def forward(self, x):
        xp = get_array_module(x)
        # tanh form: exp(-x) overflows float32 below about -88; tanh never does.
        self.y = 0.5 * xp.tanh(0.5 * x) + 0.5
        return self.y

    def backward(self, gy):
        return gy * self.y * (1 - self.y)


class ReLU(Function):
    """y = max(x, 0).  Backward: ∂L/∂x = ∂L/∂y where x > 0, else 0."""

    def forward(self, x):
        self.positive = x > 0
        return x * self.positive

    def backward(self, gy):
        return gy * self.positive


class LeakyReLU(Function):
    """y = x for x > 0, α·x otherwise.  Backward: ∂L/∂x = ∂L/∂y · (1 or α)."""

    def __init__(self, alpha: float):
        self.alpha = alpha

    def forward(self, x):
        xp = get_array_module(x)
        self.slope = xp.where(x > 0, x.dtype.type(1), x.dtype.type(self.alpha))
        return x * self.slope

    def backward(self, gy):
        return gy * self.slope


class ELU(Function):
    """y = x for x > 0, α·(eˣ - 1) otherwise.  Backward: ∂L/∂x = ∂L/∂y · (1, or y + α)."""

    def __init__(self, alpha: float):
        self.alpha = alpha

    def forward(self, x):
        xp = get_array_module(x)
        self.positive = x > 0
        self.y = xp.where(self.positive, x, self.alpha * xp.expm1(xp.minimum(x, 0)))
        return self.y

    def backward(self, gy):
        xp = get_array_module(gy)
        return gy * xp.where(self.positive, gy.dtype.type(1), self.y + self.alpha)


class Softmax(Function):
    """y_i = exp(x_i) / Σ_j exp(x_j) along ``axis``.

    Backward: ∂L/∂x = y ⊙ (∂L/∂y - Σ_j ∂L/∂y_j · y_j).
    """

    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, x):
        xp = get_array_module(x)
        e = xp.exp(x - x.max(axis=self.axis, keepdims=True))  # softmax ignores shifts; keeps exp() finite
        self.y = e / e.sum(axis=self.axis, keepdims=True)
        return self.y

    def backward(self, gy):
        return self.y * (gy - (gy * self.y).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    """y_i = x_i - log Σ_j exp(x_j) along ``axis``.

    Backward: ∂L/∂x = ∂L/∂y - softmax(x) · Σ_j ∂L/∂y_j.
    """

    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, x):
        xp = get_array_module(x)
        shifted = x - x.max(axis=self.axis, keepdims=True)
        self.y = shifted - xp.log(xp.exp(shifted).sum(axis=self.axis, keepdims=True))
        return self.y

    def backward(self, gy):
        xp = get_array_module(gy)
        return gy - xp.exp(self.y) * gy.sum(axis=self.axis, keepdims=True)


def tanh(x) -> Tensor:
    """Hyperbolic tangent, elementwise."""
    return Tanh().apply(x)


def sigmoid(x) -> Tensor:
    """σ(x) elementwise; see Sigmoid for the derivative."""
    return Sigmoid().apply(x)


def relu(x) -> Tensor:
    """max(x, 0) elementwise."""
    return ReLU().apply(x)


def leaky_relu(x, alpha: float = 0.2) -> Tensor:
    """x, or α·x below zero (Keras' default α = 0.2)."""
    return LeakyReLU(alpha).apply(x)


def elu(x, alpha: float = 1.0) -> Tensor:
    """x, or α·(eˣ - 1) below zero."""
    return ELU(alpha).apply(x)


def softmax(x, axis: int = -1) -> Tensor:
    """Softmax along ``axis``."""
    return Softmax(axis).apply(x)


def log_softmax(x, axis: int = -1) -> Tensor:
    """log(softmax(x)) along ``axis``, computed without forming softmax (stable)."""
    return LogSoftmax(axis).apply(x)


def linear(x) -> Tensor:
    """The identity, Keras' "linear" activation."""
    return x


ACTIVATIONS = {"linear": linear, "relu": relu, "sigmoid": sigmoid, "tanh": tanh,
               "softmax": softmax, "log_softmax": log_softmax, "elu": elu, "leaky_relu": leaky_relu}


def get_activation(name):
    """The activation function for a Keras name (or None, meaning linear), or a callable as is."""
    if name is None:
        return linear
    if callable(name):
        return name
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name]
