"""Reshaping layers without weights, Keras' names and arguments: Permute, RepeatVector,
UpSampling1D, Cropping1D. Each is a view or a broadcast of its input, so its gradient is that
of reshape, transpose, getitem or a broadcast product (each checked on its own)."""
from __future__ import annotations

import minidl.functional as F
from minidl.backend import get_array_module
from minidl.layers.base import Layer, check_rank
from minidl.tensor import Tensor


def _ones(inputs: Tensor, shape: tuple):
    return get_array_module(inputs.data).ones(shape, dtype=inputs.dtype)


class Permute(Layer):
    """Reorders the sample axes: ``dims`` is a permutation of 1..rank (axis 0, the batch, stays).

    Permute((2, 1)) turns (batch, time, features) into (batch, features, time).
    Input shape: (batch, d1, ..., dn). Output shape: (batch, d_dims[0], ..., d_dims[n-1]).
    """

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        dims = tuple(int(d) for d in dims)
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError(f"Permute: dims must be a permutation of 1..{len(dims)} (the batch axis is not "
                             f"counted), got {dims}")
        self.dims = dims

    def call(self, inputs):
        check_rank(self, inputs, len(self.dims) + 1, f"(batch, {len(self.dims)} axes)")
        return F.transpose(inputs, (0,) + self.dims)

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}


class RepeatVector(Layer):
    """(batch, features) -> (batch, n, features): the vector repeated n times."""

    def __init__(self, n: int, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            raise ValueError(f"RepeatVector: n must be a positive int, got {n!r}")
        self.n = n

    def call(self, inputs):
        check_rank(self, inputs, 2, "(batch, features)")
        batch, features = inputs.shape
        return F.mul(F.reshape(inputs, (batch, 1, features)), _ones(inputs, (1, self.n, 1)))

    def get_config(self):
        return {**super().get_config(), "n": self.n}


class UpSampling1D(Layer):
    """(batch, steps, channels) -> (batch, steps·size, channels): each step repeated ``size`` times."""

    def __init__(self, size: int = 2, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise ValueError(f"UpSampling1D: size must be a positive int, got {size!r}")
        self.size = size
        self.supports_masking = False

    def call(self, inputs):
        check_rank(self, inputs, 3, "(batch, steps, channels)")
        batch, steps, channels = inputs.shape
        repeated = F.mul(F.reshape(inputs, (batch, steps, 1, channels)), _ones(inputs, (1, 1, self.size, 1)))
        return F.reshape(repeated, (batch, steps * self.size, channels))

    def get_config(self):
        return {**super().get_config(), "size": self.size}


class Cropping1D(Layer):
    """(batch, steps, channels) -> (batch, steps - before - after, channels).

    Args:
        cropping: int (both ends) or (before, after), steps removed at the start and the end.
    """

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        if isinstance(cropping, int):
            cropping = (cropping, cropping)
        cropping = tuple(cropping)
        if len(cropping) != 2 or any(not isinstance(c, int) or c < 0 for c in cropping):
            raise ValueError(f"Cropping1D: cropping must be an int >= 0 or a pair of them, got {cropping!r}")
        self.cropping = cropping

    def call(self, inputs):
        check_rank(self, inputs, 3, "(batch, steps, channels)")
        before, after = self.cropping
        steps = inputs.shape[1]
        if before + after >= steps:
            raise ValueError(f"Cropping1D '{self.name}': cropping {self.cropping} leaves no steps of inputs of "
                             f"shape {inputs.shape}")
        return F.getitem(inputs, (slice(None), slice(before, steps - after)))

    def get_config(self):
        return {**super().get_config(), "cropping": list(self.cropping)}
