"""Weight initialisers with Keras' names and formulas; every draw comes from ``dl.random``.

fan_in and fan_out follow Keras: for a kernel of shape (..., in, out) the leading axes form the
receptive field, fan_in = in · receptive field, fan_out = out · receptive field.
"""
from __future__ import annotations

import math

import numpy as np

from minidl import random


def _fans(shape: tuple) -> tuple[int, int]:
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def _truncated_normal(shape, stddev: float) -> np.ndarray:
    """Normal draws re-drawn until within two standard deviations, as Keras' TruncatedNormal."""
    rng = random.generator()
    values = rng.normal(0.0, 1.0, size=shape)
    outside = np.abs(values) > 2
    while outside.any():
        values[outside] = rng.normal(0.0, 1.0, size=int(outside.sum()))
        outside = np.abs(values) > 2
    return values * stddev


def _variance_scaling(shape, scale: float, mode: str, distribution: str) -> np.ndarray:
    fan_in, fan_out = _fans(shape)
    n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    variance = scale / max(1.0, n)
    if distribution == "uniform":
        limit = math.sqrt(3 * variance)
        return random.generator().uniform(-limit, limit, size=shape)
    # 0.8796... is the standard deviation of a unit normal truncated at ±2 (Keras' constant)
    return _truncated_normal(shape, math.sqrt(variance) / 0.87962566103423978)


def glorot_uniform(shape):
    """U(-l, l), l = √(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010); Keras' default kernel init."""
    return _variance_scaling(shape, 1.0, "fan_avg", "uniform")


def glorot_normal(shape):
    """Truncated normal with stddev √(2 / (fan_in + fan_out))."""
    return _variance_scaling(shape, 1.0, "fan_avg", "normal")


def he_normal(shape):
    """Truncated normal with stddev √(2 / fan_in) (He et al., 2015), for ReLU layers."""
    return _variance_scaling(shape, 2.0, "fan_in", "normal")


def he_uniform(shape):
    """U(-l, l), l = √(6 / fan_in)."""
    return _variance_scaling(shape, 2.0, "fan_in", "uniform")


def lecun_normal(shape):
    """Truncated normal with stddev √(1 / fan_in)."""
    return _variance_scaling(shape, 1.0, "fan_in", "normal")


def lecun_uniform(shape):
    """U(-l, l), l = √(3 / fan_in)."""
    return _variance_scaling(shape, 1.0, "fan_in", "uniform")


def orthogonal(shape, gain: float = 1.0):
    """A (semi-)orthogonal matrix from the QR decomposition of a normal draw (Saxe et al., 2014);
    Keras' default for recurrent kernels. Leading axes are flattened into rows."""
    rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    cols = shape[-1]
    flat = random.generator().normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))  # makes the result uniform over orthogonal matrices
    if rows < cols:
        q = q.T
    return gain * q[:rows, :cols].reshape(shape)


def zeros(shape):
    return np.zeros(shape)


def ones(shape):
    return np.ones(shape)


def constant(value: float = 0.0):
    """An initialiser filling with ``value``."""
    def initializer(shape):
        return np.full(shape, value, dtype=float)
    initializer.__name__ = f"constant({value})"
    return initializer


def random_normal(shape, mean: float = 0.0, stddev: float = 0.05):
    return random.generator().normal(mean, stddev, size=shape)


def random_uniform(shape, minval: float = -0.05, maxval: float = 0.05):
    return random.generator().uniform(minval, maxval, size=shape)


INITIALIZERS = {f.__name__: f for f in (glorot_uniform, glorot_normal, he_normal, he_uniform,
                                        lecun_normal, lecun_uniform, orthogonal, zeros, ones,
                                        random_normal, random_uniform)}


def get(identifier):
    """An initialiser from a Keras name or a callable ``shape -> array``."""
    if callable(identifier):
        return identifier
    if identifier not in INITIALIZERS:
        raise ValueError(f"unknown initializer {identifier!r}; known: {', '.join(sorted(INITIALIZERS))}")
    return INITIALIZERS[identifier]
