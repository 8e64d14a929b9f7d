"""Regularising noise layers, active in training only: GaussianNoise, SpatialDropout1D."""
from __future__ import annotations

import minidl.functional as F
from minidl import random
from minidl.backend import get_array_module
from minidl.layers.base import Layer, check_rank
from minidl.layers.core import Dropout


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


class SpatialDropout1D(Dropout):
    """Dropout of whole channels: in training each (sample, channel) is zeroed with probability
    ``rate`` at every step together, the rest scaled by 1/(1 - rate) (Tompson et al., 2015).
    Neighbouring frames are strongly correlated, so dropping single values barely regularises.

    Input/Output shape: (batch, steps, channels).
    """

    def __init__(self, rate: float, seed=None, **kwargs):
        super().__init__(rate, **kwargs)
        self.seed = seed

    def call(self, inputs, training=False):
        check_rank(self, inputs, 3, "(batch, steps, channels)")
        return F.dropout(inputs, self.rate, training=training, noise_shape=(inputs.shape[0], 1, inputs.shape[2]))

    def get_config(self):
        config = super().get_config()
        config.pop("noise_shape")
        return {**config, "seed": self.seed}
