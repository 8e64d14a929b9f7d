"""Batch and layer normalisation as fused Functions, their three-term backward written out.

Both standardise x over some axes and then scale and shift it, per feature:

    μ = mean(x),  σ² = mean((x - μ)²)          over the normalised axes (biased variance)
    x̂ = (x - μ) / √(σ² + eps)
    y = γ ⊙ x̂ + β

Batch normalisation takes the statistics over every axis except the feature axis (the batch
and, for images, the pixels); layer normalisation over the feature axes of each sample. With
m values per statistic and g = γ ⊙ ∂L/∂y, differentiating through μ and σ² as well as x gives

    ∂L/∂x = (1 / √(σ² + eps)) · (g - mean(g) - x̂ ⊙ mean(g ⊙ x̂))
    ∂L/∂γ = Σ ∂L/∂y ⊙ x̂,    ∂L/∂β = Σ ∂L/∂y

(the means over the same axes as μ, the sums over the axes γ is shared across). The first term
is the direct path, the second the path through μ, the third the path through σ².
"""
from __future__ import annotations

from minidl.backend import Array, get_array_module
from minidl.function import Function
from minidl.functional.shape import reshape
from minidl.tensor import Tensor, as_tensor


def _standardize_backward(g: Array, x_hat: Array, inv_std: Array, axes: tuple[int, ...]) -> Array:
    """∂L/∂x of x̂ = (x - μ)/√(σ² + eps) with μ, σ² taken over ``axes``, given g = ∂L/∂x̂."""
    return inv_std * (g - g.mean(axis=axes, keepdims=True)
                      - x_hat * (g * x_hat).mean(axis=axes, keepdims=True))


class _Normalize(Function):
    """Shared by batch and layer normalisation: standardise over ``axes``, scale and shift.

    gamma and beta come in the shape that broadcasts against x (size-1 reduced axes); their
    gradients are summed over ``param_axes`` (where they were broadcast) back to that shape.
    """

    def __init__(self, axes: tuple[int, ...], param_axes: tuple[int, ...], epsilon: float):
        self.axes, self.param_axes, self.epsilon = axes, param_axes, epsilon

    def forward(self, x: Array, gamma: Array, beta: Array) -> Array:
        self.mean = x.mean(axis=self.axes, keepdims=True)
        centered = x - self.mean
        self.variance = (centered * centered).mean(axis=self.axes, keepdims=True)
        xp = get_array_module(x)
        self.inv_std = 1 / xp.sqrt(self.variance + x.dtype.type(self.epsilon))
        self.x_hat = centered * self.inv_std
        self.gamma = gamma
        return self.x_hat * gamma + beta

    def backward(self, gy: Array):
        gx = gg = gb = None
        if self.needs_input_grad[0]:
            gx = _standardize_backward(gy * self.gamma, self.x_hat, self.inv_std, self.axes)
        if self.needs_input_grad[1]:
            gg = (gy * self.x_hat).sum(axis=self.param_axes, keepdims=True)
        if self.needs_input_grad[2]:
            gb = gy.sum(axis=self.param_axes, keepdims=True)
        return gx, gg, gb


class BatchNormalizationFunction(_Normalize):
    """Batch normalisation in training: the statistics of this batch, over every axis but the
    feature axis. Shapes: x (batch, ..., features, ...), gamma and beta broadcastable (size 1
    except on the feature axis) -> y like x. After forward, ``mean`` and ``variance`` (biased,
    as Keras' moving average uses) hold the batch statistics. Math: the module docstring."""


class LayerNormalizationFunction(_Normalize):
    """Layer normalisation: each sample standardised over its feature axes (Ba et al., 2016).
    Shapes: x any, gamma and beta broadcastable over the normalised axes -> y like x.
    Math: the module docstring; γ and β are shared across the other axes."""


class FixedNormalization(Function):
    """Batch normalisation at inference: fixed statistics (the moving mean and variance).

        x̂ = (x - mean) / √(variance + eps),   y = γ ⊙ x̂ + β

    Backward (mean and variance are constants here): ∂L/∂x = γ / √(variance + eps) ⊙ ∂L/∂y,
    ∂L/∂γ = Σ ∂L/∂y ⊙ x̂, ∂L/∂β = Σ ∂L/∂y, the sums over ``param_axes``.
    """

    def __init__(self, param_axes: tuple[int, ...], epsilon: float):
        self.param_axes, self.epsilon = param_axes, epsilon

    def forward(self, x: Array, mean: Array, variance: Array, gamma: Array, beta: Array) -> Array:
        xp = get_array_module(x)
        self.inv_std = 1 / xp.sqrt(variance + x.dtype.type(self.epsilon))
        self.x_hat = (x - mean) * self.inv_std
        self.gamma = gamma
        return self.x_hat * gamma + beta

    def backward(self, gy: Array):
        gx = gy * (self.gamma * self.inv_std) if self.needs_input_grad[0] else None
        gg = (gy * self.x_hat).sum(axis=self.param_axes, keepdims=True) if self.needs_input_grad[3] else None
        gb = gy.sum(axis=self.param_axes, keepdims=True) if self.needs_input_grad[4] else None
        return gx, None, None, gg, gb


# --- public functions -------------------------------------------------------------------------------
def _axes(axis, ndim: int, where: str) -> tuple[int, ...]:
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    if not axes or any(not -ndim <= a < ndim for a in axes):
        raise ValueError(f"{where}: axis {axis!r} is out of range for a {ndim}-D input")
    return tuple(sorted(a % ndim for a in axes))


def _broadcast(param, x: Tensor, kept: tuple[int, ...], fill: float) -> Tensor:
    """gamma or beta reshaped to broadcast against x (sizes on ``kept`` axes, 1 elsewhere); a
    constant ``fill`` when None (scale=False / center=False)."""
    shape = tuple(n if i in kept else 1 for i, n in enumerate(x.shape))
    if param is None:
        xp = get_array_module(x.data)
        return Tensor(xp.full(shape, fill, dtype=x.dtype))
    param = as_tensor(param)
    return param if param.shape == shape else reshape(param, shape)


def batch_normalization_train(x, gamma=None, beta=None, axis: int = -1,
                              epsilon: float = 1e-3) -> tuple[Tensor, Array, Array]:
    """Batch normalisation with this batch's statistics.

    Args:
        x: (batch, ..., features, ...). gamma, beta: (features,) or None (1 and 0).
        axis: the feature axis; statistics are taken over all the others.
    Returns:
        y like x, and the batch mean and (biased) variance as (features,) arrays, for the
        moving averages.
    """
    x = as_tensor(x)
    (feature,) = _axes(axis, x.ndim, "batch_normalization")
    axes = tuple(i for i in range(x.ndim) if i != feature)
    function = BatchNormalizationFunction(axes, axes, epsilon)
    y = function.apply(x, _broadcast(gamma, x, (feature,), 1.0), _broadcast(beta, x, (feature,), 0.0))
    return y, function.mean.reshape(-1), function.variance.reshape(-1)


def batch_normalization_masked_train(x, mask, gamma=None, beta=None, axis: int = -1,
                                     epsilon: float = 1e-3) -> tuple[Tensor, Array, Array]:
    """Batch normalisation whose statistics leave masked positions out, as Keras 3 does:

        w = the mask on every feature (1 valid, 0 masked),  n = Σ w + 1e-7
        μ = Σ w ⊙ x / n,    σ² = Σ w ⊙ (x - μ)² / n      (sums over every axis but ``axis``)
        y = γ ⊙ (x - μ) / √(σ² + eps) + β                (at every position, masked or not)

    (1e-7 is Keras' backend epsilon: a feature with no valid position gets μ = σ² = 0.) Built
    from primitive ops, so autograd differentiates it; masks are the rare case, and the
    unmasked batch_normalization_train is the fused Function.

    Args:
        x: (batch, ..., features). mask: bool, x's shape without the last axis (Keras
            broadcasts it over the last axis). gamma, beta: (features,) or None.
    Returns:
        y like x, and the masked batch mean and variance as (features,) arrays.
    """
    x = as_tensor(x)
    (feature,) = _axes(axis, x.ndim, "batch_normalization")
    mask = mask.data if isinstance(mask, Tensor) else mask
    if tuple(mask.shape) != tuple(x.shape[:-1]):
        raise ValueError(f"batch_normalization: expected a mask of shape {tuple(x.shape[:-1])} (the input's "
                         f"shape without its last axis) for an input of shape {x.shape}, "
                         f"got {tuple(mask.shape)}")
    xp = get_array_module(x.data)
    axes = tuple(i for i in range(x.ndim) if i != feature)
    weights = xp.broadcast_to(xp.asarray(mask)[..., None], x.shape).astype(x.dtype)
    count = weights.sum(axis=axes, keepdims=True) + x.dtype.type(1e-7)
    mean = (x * weights).sum(axes, keepdims=True) / count
    centered = x - mean
    variance = (centered * centered * weights).sum(axes, keepdims=True) / count
    x_hat = centered / (variance + x.dtype.type(epsilon)).sqrt()
    y = x_hat * _broadcast(gamma, x, (feature,), 1.0) + _broadcast(beta, x, (feature,), 0.0)
    return y, mean.data.reshape(-1), variance.data.reshape(-1)


def batch_normalization(x, mean, variance, gamma=None, beta=None, axis: int = -1,
                        epsilon: float = 1e-3) -> Tensor:
    """Normalise x with fixed statistics: γ ⊙ (x - mean) / √(variance + eps) + β.

    Args:
        x: (batch, ..., features, ...). mean, variance: (features,) arrays (no gradient).
        gamma, beta: (features,) or None. axis: the feature axis.
    """
    x = as_tensor(x)
    (feature,) = _axes(axis, x.ndim, "batch_normalization")
    axes = tuple(i for i in range(x.ndim) if i != feature)
    shape = tuple(n if i == feature else 1 for i, n in enumerate(x.shape))
    mean = (mean.data if isinstance(mean, Tensor) else mean).reshape(shape)
    variance = (variance.data if isinstance(variance, Tensor) else variance).reshape(shape)
    return FixedNormalization(axes, epsilon).apply(x, mean, variance, _broadcast(gamma, x, (feature,), 1.0),
                                                   _broadcast(beta, x, (feature,), 0.0))


def layer_normalization(x, gamma=None, beta=None, axis=-1, epsilon: float = 1e-3) -> Tensor:
    """Layer normalisation over ``axis`` (an int or a tuple of axes) of each sample.

    Args:
        x: any shape. gamma, beta: shaped like x on ``axis`` (e.g. (features,)), or None.
    """
    x = as_tensor(x)
    axes = _axes(axis, x.ndim, "layer_normalization")
    param_axes = tuple(i for i in range(x.ndim) if i not in axes)
    return LayerNormalizationFunction(axes, param_axes, epsilon).apply(
        x, _broadcast(gamma, x, axes, 1.0), _broadcast(beta, x, axes, 0.0))
