"""Reshaping layers without weights, Keras' names and arguments: Permute, RepeatVector,
UpSampling1D/2D, Cropping1D/2D. Each is a view, a broadcast or a fixed linear map of its input,
so its gradient is that of reshape, transpose, getitem, a broadcast product or a matmul (each
checked on its own). The 1-D and 2-D layers of a kind share one body (``_UpSampling``,
``_Cropping``), written for any number of spatial axes between the batch and the channels."""
from __future__ import annotations

import numpy as np

import minidl.functional as F
from minidl.backend import Array, get_array_module
from minidl.functional.conv import normalize_tuple
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


class _UpSampling(Layer):
    """What UpSampling1D and UpSampling2D share: each spatial axis k stretched by size[k].

    'nearest' repeats: y[b, p, q, c] = x[b, ⌊p / s_h⌋, ⌊q / s_w⌋, c], computed as a broadcast
    product of x (batch, n₁, 1, n₂, 1, c) with ones (1, 1, s₁, 1, s₂, 1), reshaped; its gradient
    sums each block of s₁·s₂ outputs back onto the input it came from.
    """

    rank = 0
    layout = ""

    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        self.size = normalize_tuple(size, self.rank, "size", f"{type(self).__name__}")
        self.supports_masking = False

    def call(self, inputs):
        check_rank(self, inputs, self.rank + 2, self.layout)
        batch, *spatial, channels = inputs.shape
        interleaved = [axis for n, s in zip(spatial, self.size) for axis in (n, 1)]
        ones = [axis for s in self.size for axis in (1, s)]
        repeated = F.mul(F.reshape(inputs, (batch, *interleaved, channels)), _ones(inputs, (1, *ones, 1)))
        return F.reshape(repeated, (batch, *(n * s for n, s in zip(spatial, self.size)), channels))


class UpSampling1D(_UpSampling):
    """(batch, steps, channels) -> (batch, steps·size, channels): each step repeated ``size`` times."""

    rank = 1
    layout = "(batch, steps, channels)"

    def __init__(self, size: int = 2, **kwargs):
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise ValueError(f"UpSampling1D: size must be a positive int, got {size!r}")
        super().__init__(size, **kwargs)

    def get_config(self):
        return {**super().get_config(), "size": self.size[0]}


def bilinear_matrix(size: int, factor: int, dtype) -> Array:
    """The (size·factor, size) matrix A with y = A·x the bilinear upsampling of one axis.

    Half-pixel centres, as Keras' resize (torch ``interpolate(align_corners=False)``): output
    p samples the input at u = (p + ½)/factor - ½, clamped to [0, size - 1]; with i = ⌊u⌋ and
    λ = u - i, A[p, i] = 1 - λ and A[p, min(i + 1, size - 1)] += λ.
    """
    u = (np.arange(size * factor) + 0.5) / factor - 0.5
    u = np.clip(u, 0, size - 1)
    low = np.floor(u).astype(int)
    high = np.minimum(low + 1, size - 1)
    weight = u - low
    matrix = np.zeros((size * factor, size))
    rows = np.arange(size * factor)
    matrix[rows, low] += 1 - weight
    matrix[rows, high] += weight   # low == high only at the clamped ends, where weight is 0
    return matrix.astype(dtype)


class UpSampling2D(_UpSampling):
    """(batch, h, w, channels) -> (batch, h·size[0], w·size[1], channels).

    Args:
        size: int or (rows, columns), the factor of each axis.
        data_format: None or 'channels_last' (the only layout).
        interpolation: 'nearest' (each pixel repeated, see _UpSampling) or 'bilinear':
            y = A_h · x · A_wᵀ per image and channel, A from ``bilinear_matrix`` (Keras' half-pixel
            resize); two matmuls, so the gradient is theirs: Aᵀ_h · g · A_w. Keras' 'bicubic',
            'lanczos3', 'lanczos5' and 'area' raise NotImplementedError.
    Input shape:  (batch, height, width, channels)
    Output shape: (batch, height·size[0], width·size[1], channels)
    """

    rank = 2
    layout = "(batch, height, width, channels)"
    interpolations = ("nearest", "bilinear")

    def __init__(self, size=(2, 2), data_format: str | None = None, interpolation: str = "nearest", **kwargs):
        super().__init__(size, **kwargs)
        check_channels_last(self, data_format)
        if not isinstance(interpolation, str) or interpolation.lower() not in self.interpolations:
            raise NotImplementedError(f"UpSampling2D '{self.name}': interpolation {interpolation!r} is not "
                                      f"supported by minidl; use 'nearest' or 'bilinear'")
        self.data_format, self.interpolation = data_format, interpolation.lower()

    def call(self, inputs):
        if self.interpolation == "nearest":
            return super().call(inputs)
        check_rank(self, inputs, 4, self.layout)
        _, height, width, _ = inputs.shape
        xp = get_array_module(inputs.data)
        rows = xp.asarray(bilinear_matrix(height, self.size[0], inputs.dtype))
        columns = xp.asarray(bilinear_matrix(width, self.size[1], inputs.dtype))
        images = F.transpose(inputs, (0, 3, 1, 2))                        # (batch, c, h, w)
        stretched = F.matmul(F.matmul(rows, images), columns.T)           # (batch, c, H, W)
        return F.transpose(stretched, (0, 2, 3, 1))

    def get_config(self):
        return {**super().get_config(), "size": list(self.size), "data_format": self.data_format,
                "interpolation": self.interpolation}


def check_channels_last(layer: Layer, data_format) -> None:
    """Refuse Keras' 'channels_first': minidl's images are channels last only."""
    if data_format not in (None, "channels_last"):
        raise NotImplementedError(f"{type(layer).__name__} '{layer.name}': data_format={data_format!r} is not "
                                  f"supported by minidl, only 'channels_last'; transpose the input to channels last")


class _Cropping(Layer):
    """What Cropping1D and Cropping2D share: ``cropping[k] = (before, after)`` entries removed
    at the two ends of spatial axis k; a slice, so the gradient is zeros there."""

    rank = 0
    layout = ""

    def call(self, inputs):
        check_rank(self, inputs, self.rank + 2, self.layout)
        spatial = inputs.shape[1:-1]
        if any(before + after >= n for n, (before, after) in zip(spatial, self.cropping)):
            shown = self.cropping[0] if self.rank == 1 else self.cropping
            raise ValueError(f"{type(self).__name__} '{self.name}': cropping {shown} leaves no steps of inputs of "
                             f"shape {inputs.shape}")
        return F.getitem(inputs, (slice(None),) + tuple(slice(before, n - after)
                                                        for n, (before, after) in zip(spatial, self.cropping)))


def _crop_pair(value, where: str) -> tuple[int, int]:
    """An int (both ends) or a (before, after) pair of ints >= 0, as a pair; else a ValueError."""
    pair = (value, value) if isinstance(value, int) else tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(pair) != 2 or any(not isinstance(c, int) or isinstance(c, bool) or c < 0 for c in pair):
        raise ValueError(f"{where}: cropping must be an int >= 0 or a pair of them, got {value!r}")
    return pair


class Cropping1D(_Cropping):
    """(batch, steps, channels) -> (batch, steps - before - after, channels).

    Args:
        cropping: int (both ends) or (before, after), steps removed at the start and the end.
    """

    rank = 1
    layout = "(batch, steps, channels)"

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.cropping = (_crop_pair(cropping, "Cropping1D"),)

    def get_config(self):
        return {**super().get_config(), "cropping": list(self.cropping[0])}


class Cropping2D(_Cropping):
    """(batch, h, w, channels) -> (batch, h - top - bottom, w - left - right, channels).

    Args:
        cropping: int (all four sides), (rows, columns) (each removed at both ends of its axis)
            or ((top, bottom), (left, right)).
        data_format: None or 'channels_last' (the only layout).
    """

    rank = 2
    layout = "(batch, height, width, channels)"

    def __init__(self, cropping=((0, 0), (0, 0)), data_format: str | None = None, **kwargs):
        super().__init__(**kwargs)
        check_channels_last(self, data_format)
        if isinstance(cropping, int):
            cropping = (cropping, cropping)
        if not isinstance(cropping, (tuple, list)) or len(cropping) != 2:
            raise ValueError(f"Cropping2D: cropping must be an int, (rows, columns) or ((top, bottom), "
                             f"(left, right)), got {cropping!r}")
        self.cropping = tuple(_crop_pair(axis, "Cropping2D") for axis in cropping)
        self.data_format = data_format

    def get_config(self):
        return {**super().get_config(), "cropping": [list(pair) for pair in self.cropping],
                "data_format": self.data_format}
