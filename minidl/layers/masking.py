"""Masking: mark padded steps so that recurrent layers skip them (Keras' Masking)."""
from __future__ import annotations

import minidl.functional as F
from minidl.backend import get_array_module
from minidl.layers.base import Layer
from minidl.tensor import Tensor


class Masking(Layer):
    """Mask every step whose features all equal ``mask_value``.

    The mask is bool (batch, steps): step t of a sequence is kept when any of its features
    (the last axis) differs from mask_value. Outputs equal the inputs at kept steps and are zero at masked
    steps (as Keras 3: ``where(mask, inputs, 0)``); the mask rides on the output (``.mask``), so a
    following SimpleRNN, LSTM, GRU or Bidirectional carries its state over the masked steps.

    Args:
        mask_value: the padding value (0.0 by default, as ``pad_sequences`` pads).
    Input shape:  (batch, steps, features)
    Output shape: the same; output mask (batch, steps)
    """

    def __init__(self, mask_value: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = mask_value
        self.supports_masking = True

    def _keep(self, inputs: Tensor):
        if inputs.ndim < 2:
            raise ValueError(f"Masking '{self.name}' expects an input of shape (batch, steps, ...), "
                             f"got shape {inputs.shape}")
        return (inputs.data != self.mask_value).any(axis=-1)

    def call(self, inputs: Tensor) -> Tensor:
        zero = get_array_module(inputs.data).zeros((), dtype=inputs.dtype)
        return F.where(self._keep(inputs)[..., None], inputs, zero)

    def compute_mask(self, inputs: Tensor, mask=None):
        return self._keep(inputs)

    def get_config(self) -> dict:
        return {**super().get_config(), "mask_value": self.mask_value}
