"""Activations: tanh, sigmoid, relu (and its Keras options), leaky_relu, prelu, elu, selu, gelu,
silu/swish, softplus, softsign, hard_sigmoid, hard_silu/hard_swish, mish, exponential, softmax,
log_softmax; ``get_activation`` maps Keras' names to them and refuses the Keras names minidl lacks."""
from __future__ import annotations

import math

import numpy as np

from minidl.backend import get_array_module
from minidl.function import Function
from minidl.functional import arithmetic
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


class GeneralizedReLU(Function):
    """Keras' ReLU with options (``keras.layers.ReLU``, ``keras.activations.relu``), elementwise:

        y = max_value                         for x ≥ max_value
        y = x                                 for threshold ≤ x < max_value
        y = negative_slope · (x - threshold)  for x < threshold

    Backward: ∂L/∂x = ∂L/∂y · (0, 1 or negative_slope) on those three pieces.
    """

    def __init__(self, negative_slope: float = 0.0, max_value: float | None = None, threshold: float = 0.0):
        self.negative_slope, self.max_value, self.threshold = negative_slope, max_value, threshold

    def forward(self, x):
        xp = get_array_module(x)
        one, zero = x.dtype.type(1), x.dtype.type(0)
        below = x < self.threshold
        self.slope = xp.where(below, x.dtype.type(self.negative_slope), one)
        y = xp.where(below, self.negative_slope * (x - self.threshold), x)
        if self.max_value is not None:
            clipped = x >= self.max_value
            self.slope = xp.where(clipped, zero, self.slope)
            y = xp.where(clipped, x.dtype.type(self.max_value), y)
        return y.astype(x.dtype, copy=False)

    def backward(self, gy):
        return gy * self.slope


class PReLUFunction(Function):
    """Parametric ReLU (He et al., 2015): y = x for x > 0, α·x otherwise, with α learned.

    α broadcasts against x (Keras' PReLU has α of the sample shape, size 1 on shared axes).
    Backward: ∂L/∂x = ∂L/∂y · (1 or α);  ∂L/∂α = Σ over broadcast axes of ∂L/∂y · min(x, 0).
    Shapes: x (batch, ...), alpha broadcastable to x; y like x.
    """

    def forward(self, x, alpha):
        xp = get_array_module(x)
        self.negative = xp.minimum(x, 0)
        self.alpha, self.positive = alpha, x > 0
        return xp.maximum(x, 0) + alpha * self.negative

    def backward(self, gy):
        xp = get_array_module(gy)
        gx = gy * xp.where(self.positive, gy.dtype.type(1), self.alpha)
        ga = gy * self.negative
        ga = ga.sum(axis=tuple(range(ga.ndim - self.alpha.ndim)))  # the leading axes alpha lacks
        ga = ga.sum(axis=tuple(i for i, n in enumerate(self.alpha.shape) if n == 1), keepdims=True)
        return gx, ga.reshape(self.alpha.shape)


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


class SELU(Function):
    """Scaled ELU (Klambauer et al., 2017): y = λ·x for x > 0, λ·α·(eˣ - 1) otherwise, with
    α ≈ 1.67326 and λ ≈ 1.05070 (Keras' constants).  Backward: ∂L/∂x = ∂L/∂y · (λ, or y + λα)."""

    def forward(self, x):
        xp = get_array_module(x)
        self.positive = x > 0
        self.y = SELU_SCALE * xp.where(self.positive, x, SELU_ALPHA * xp.expm1(xp.minimum(x, 0)))
        return self.y.astype(x.dtype, copy=False)

    def backward(self, gy):
        xp = get_array_module(gy)
        return gy * xp.where(self.positive, gy.dtype.type(SELU_SCALE), self.y + SELU_SCALE * SELU_ALPHA)


class GELU(Function):
    """Gaussian error linear unit (Hendrycks & Gimpel, 2016), elementwise.

    Exact:        y = x·Φ(x),  Φ(x) = ½(1 + erf(x/√2));     ∂y/∂x = Φ(x) + x·φ(x),  φ = e^(-x²/2)/√(2π)
    approximate:  y = ½x(1 + tanh u),  u = √(2/π)(x + 0.044715x³);
                  ∂y/∂x = ½(1 + tanh u) + ½x(1 - tanh²u)·√(2/π)(1 + 3·0.044715x²)
    """

    def __init__(self, approximate: bool = False):
        self.approximate = approximate

    def forward(self, x):
        xp = get_array_module(x)
        self.x = x
        if self.approximate:
            self.t = xp.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))
            return 0.5 * x * (1 + self.t)
        if xp is not np:
            raise NotImplementedError("gelu(approximate=False) is not supported on the GPU backend "
                                      "(it needs erf); use gelu(approximate=True)")
        from scipy.special import erf  # scipy is a core dependency; loaded when exact GELU first runs
        self.cdf = 0.5 * (1 + erf(x / math.sqrt(2)))
        return x * self.cdf

    def backward(self, gy):
        xp = get_array_module(gy)
        x = self.x
        if self.approximate:
            du = math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * x * x)
            return gy * (0.5 * (1 + self.t) + 0.5 * x * (1 - self.t * self.t) * du)
        return gy * (self.cdf + x * xp.exp(-0.5 * x * x) / math.sqrt(2 * math.pi))


class SiLU(Function):
    """Sigmoid linear unit, Keras' ``silu`` and ``swish``: y = x·σ(x).
    Backward: ∂L/∂x = ∂L/∂y · σ(x)·(1 + x·(1 - σ(x)))."""

    def forward(self, x):
        xp = get_array_module(x)
        self.x, self.s = x, 0.5 * xp.tanh(0.5 * x) + 0.5
        return x * self.s

    def backward(self, gy):
        return gy * self.s * (1 + self.x * (1 - self.s))


class Softplus(Function):
    """y = log(1 + eˣ), computed as max(x, 0) + log1p(e^(-|x|)) so it never overflows.
    Backward: ∂L/∂x = ∂L/∂y · σ(x)."""

    def forward(self, x):
        xp = get_array_module(x)
        self.x = x
        return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))

    def backward(self, gy):
        xp = get_array_module(gy)
        return gy * (0.5 * xp.tanh(0.5 * self.x) + 0.5)


class Softsign(Function):
    """y = x / (1 + |x|).  Backward: ∂L/∂x = ∂L/∂y / (1 + |x|)²."""

    def forward(self, x):
        xp = get_array_module(x)
        self.denominator = 1 + xp.abs(x)
        return x / self.denominator

    def backward(self, gy):
        return gy / (self.denominator * self.denominator)


class HardSigmoid(Function):
    """Keras 3's hard sigmoid: y = clip(x/6 + ½, 0, 1) (= relu6(x + 3)/6).
    Backward: ∂L/∂x = ∂L/∂y / 6 for -3 < x < 3, else 0."""

    def forward(self, x):
        xp = get_array_module(x)
        self.inside = (x > -3) & (x < 3)
        return xp.clip(x / 6 + 0.5, 0, 1).astype(x.dtype, copy=False)

    def backward(self, gy):
        return gy * self.inside / 6


class HardSiLU(Function):
    """Keras' ``hard_silu`` / ``hard_swish`` (Howard et al., 2019): y = x·clip(x/6 + ½, 0, 1).
    Backward: ∂L/∂x = ∂L/∂y · (0 for x ≤ -3, x/3 + ½ for -3 < x < 3, 1 for x ≥ 3)."""

    def forward(self, x):
        xp = get_array_module(x)
        self.x = x
        return x * xp.clip(x / 6 + 0.5, 0, 1)

    def backward(self, gy):
        xp = get_array_module(gy)
        x = self.x
        return gy * xp.where(x >= 3, 1, xp.where(x <= -3, 0, x / 3 + 0.5)).astype(gy.dtype, copy=False)


class Mish(Function):
    """Mish (Misra, 2019): y = x·tanh(softplus(x)).
    Backward: ∂L/∂x = ∂L/∂y · (t + x·(1 - t²)·σ(x)),  t = tanh(softplus(x))."""

    def forward(self, x):
        xp = get_array_module(x)
        self.x = x
        self.t = xp.tanh(xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x))))
        return x * self.t

    def backward(self, gy):
        xp = get_array_module(gy)
        sigmoid = 0.5 * xp.tanh(0.5 * self.x) + 0.5
        return gy * (self.t + self.x * (1 - self.t * self.t) * sigmoid)


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


def relu_with_options(x, negative_slope: float = 0.0, max_value: float | None = None,
                      threshold: float = 0.0) -> Tensor:
    """Keras' ``relu(x, negative_slope, max_value, threshold)``; see GeneralizedReLU. Shape kept."""
    if negative_slope == 0 and max_value is None and threshold == 0:
        return relu(x)
    return GeneralizedReLU(negative_slope, max_value, threshold).apply(x)


def relu6(x) -> Tensor:
    """min(max(x, 0), 6) elementwise (Keras' ``relu6``)."""
    return GeneralizedReLU(max_value=6.0).apply(x)


def prelu(x, alpha) -> Tensor:
    """x, or α·x below zero, with α a Tensor broadcastable to x (learned in layers.PReLU)."""
    return PReLUFunction().apply(x, alpha)


def selu(x) -> Tensor:
    """Scaled ELU with Keras' α and λ, elementwise."""
    return SELU().apply(x)


def gelu(x, approximate: bool = False) -> Tensor:
    """GELU, exact (erf) or with the tanh approximation; exact by default, as Keras 3's
    ``keras.activations.gelu``. Shape kept."""
    return GELU(approximate).apply(x)


def silu(x) -> Tensor:
    """x·σ(x) elementwise (Keras' ``silu``, also named ``swish``)."""
    return SiLU().apply(x)


swish = silu


def softplus(x) -> Tensor:
    """log(1 + eˣ) elementwise, overflow-free."""
    return Softplus().apply(x)


def softsign(x) -> Tensor:
    """x / (1 + |x|) elementwise."""
    return Softsign().apply(x)


def hard_sigmoid(x) -> Tensor:
    """clip(x/6 + ½, 0, 1) elementwise (Keras 3's definition)."""
    return HardSigmoid().apply(x)


def hard_silu(x) -> Tensor:
    """x·hard_sigmoid(x) elementwise (Keras' ``hard_silu``, also named ``hard_swish``)."""
    return HardSiLU().apply(x)


hard_swish = hard_silu


def mish(x) -> Tensor:
    """x·tanh(softplus(x)) elementwise."""
    return Mish().apply(x)


def exponential(x) -> Tensor:
    """eˣ elementwise (Keras' ``exponential`` activation)."""
    return arithmetic.exp(x)


def linear(x) -> Tensor:
    """The identity, Keras' "linear" activation."""
    return x


ACTIVATIONS = {"linear": linear, "relu": relu, "sigmoid": sigmoid, "tanh": tanh,
               "softmax": softmax, "log_softmax": log_softmax, "elu": elu, "leaky_relu": leaky_relu,
               "relu6": relu6, "selu": selu, "gelu": gelu, "silu": silu, "swish": swish,
               "softplus": softplus, "softsign": softsign, "hard_sigmoid": hard_sigmoid,
               "hard_silu": hard_silu, "hard_swish": hard_swish, "mish": mish, "exponential": exponential}

# keras.activations names minidl does not have: asking for one says so, instead of "unknown"
KERAS_ONLY_ACTIVATIONS = ("celu", "glu", "hard_shrink", "hard_tanh", "log_sigmoid", "soft_shrink",
                          "sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus", "tanh_shrink",
                          "threshold")


def get_activation(name):
    """The activation function for a Keras name (or None, meaning linear), or a callable as is."""
    if name is None:
        return linear
    if callable(name):
        return name
    if name in KERAS_ONLY_ACTIVATIONS:
        raise NotImplementedError(f"the Keras activation {name!r} is not supported by minidl; "
                                  f"supported: {', '.join(sorted(ACTIVATIONS))}")
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name]
