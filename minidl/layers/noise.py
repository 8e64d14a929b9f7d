"""Regularising noise layers, active in training only: GaussianNoise, SpatialDropout1D/2D."""
from __future__ import annotations

import minidl.functional as F
from minidl import random
from minidl.backend import get_array_module
from minidl.layers.base import Layer, check_rank
from minidl.layers.core import Dropout
from minidl.layers.reshaping import check_channels_last


class GaussianNoise(Layer):
    """In training y = x + n, n ~ N(0, stddev²) drawn afresh each call (from minidl's
    generator); at inference y = x. The gradient is the identity.

    Args:
        stddev: float >= 0. seed: accepted for Keras' signature; draws come from dl.random.
    Input/Output shape: any, unchanged.
    """

    def __init__(self, stddev: float, seed=None, **kwargs):
        super().__init__(**kwargs)
        if stddev is None or stddev < 0:
            raise ValueError(f"GaussianNoise: stddev must be a float >= 0, got {stddev!r}")
        self.stddev, self.seed = float(stddev), seed
        self.supports_masking = True

    def call(self, inputs, training=False):
        if not training or self.stddev == 0:
            return inputs
        noise = random.generator().normal(0.0, self.stddev, size=inputs.shape).astype(inputs.dtype)
        return F.add(inputs, get_array_module(inputs.data).asarray(noise))

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class _SpatialDropout(Dropout):
    """Dropout of whole channels, what SpatialDropout1D and SpatialDropout2D share: in training
    each (sample, channel) is zeroed with probability ``rate`` at every spatial position together,
    the rest scaled by 1/(1 - rate) (Tompson et al., 2015): F.dropout with the noise shape
    (batch, 1, ..., 1, channels). Neighbouring frames or pixels are strongly correlated, so
    dropping single values barely regularises.
    """

    rank = 0
    layout = ""

    def __init__(self, rate: float, seed=None, **kwargs):
        super().__init__(rate, **kwargs)
        self.seed = seed

    def call(self, inputs, training=False):
        check_rank(self, inputs, self.rank + 2, self.layout)
        noise_shape = (inputs.shape[0],) + (1,) * self.rank + (inputs.shape[-1],)
        return F.dropout(inputs, self.rate, training=training, noise_shape=noise_shape)

    def get_config(self):
        config = super().get_config()
        config.pop("noise_shape")
        return {**config, "seed": self.seed}


class SpatialDropout1D(_SpatialDropout):
    """Whole channels dropped over all steps (see _SpatialDropout).

    Input/Output shape: (batch, steps, channels).
    """

    rank = 1
    layout = "(batch, steps, channels)"


class SpatialDropout2D(_SpatialDropout):
    """Whole feature maps dropped (see _SpatialDropout).

    Args:
        rate: float in [0, 1). data_format: None or 'channels_last' (the only layout).
        seed: accepted for Keras' signature; draws come from dl.random.
    Input/Output shape: (batch, height, width, channels).
    """

    rank = 2
    layout = "(batch, height, width, channels)"

    def __init__(self, rate: float, data_format: str | None = None, seed=None, **kwargs):
        super().__init__(rate, seed=seed, **kwargs)
        check_channels_last(self, data_format)
        self.data_format = data_format

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}
