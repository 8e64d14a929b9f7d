"""Embedding: integer ids to learned vectors, with Keras' ``mask_zero``."""
from __future__ import annotations

import minidl.functional as F
from minidl import backend, regularizers
from minidl.backend import get_array_module, to_numpy
from minidl.layers.base import Layer
from minidl.layers.core import config_name
from minidl.tensor import Tensor

KERAS_INITIALIZER_ALIASES = {"uniform": "random_uniform", "normal": "random_normal"}


class Embedding(Layer):
    """y[b, t] = E[ids[b, t]]: row ``ids[b, t]`` of the matrix E.

    Weight as in Keras: ``embeddings`` E (input_dim, output_dim). The gradient of E adds each
    output gradient into the row it came from (repeated ids add up). With ``mask_zero=True``
    id 0 is padding: the output carries the mask ids != 0, which recurrent layers, attention and
    the losses of a model read; id 0 then still has a row of E, as in Keras, so input_dim counts it.

    Args:
        input_dim: vocabulary size (ids are in [0, input_dim)). output_dim: vector size.
        embeddings_initializer: Keras name ("uniform", Keras' default: U(-0.05, 0.05)) or callable.
        embeddings_regularizer: None, "l1", "l2" or a Regularizer.
        mask_zero: whether id 0 is masked padding.
    Input shape:  (batch, ...) integers.
    Output shape: (batch, ..., output_dim).
    """

    def __init__(self, input_dim: int, output_dim: int, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None, mask_zero: bool = False,
                 weights=None, lora_rank=None, **kwargs):
        for name, value in (("embeddings_constraint", embeddings_constraint), ("lora_rank", lora_rank)):
            if value is not None:
                raise NotImplementedError(f"Embedding: {name} is not supported by minidl")
        super().__init__(**kwargs)
        for name, value in (("input_dim", input_dim), ("output_dim", output_dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Embedding: {name} must be a positive int, got {value!r}")
        self.input_dim, self.output_dim = input_dim, output_dim
        self.embeddings_initializer = embeddings_initializer
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.mask_zero = bool(mask_zero)
        self.initial_weights = weights
        self.supports_masking = self.mask_zero

    def build(self, input_shape):
        initializer = KERAS_INITIALIZER_ALIASES.get(self.embeddings_initializer, self.embeddings_initializer)
        self.embeddings = self.add_weight("embeddings", (self.input_dim, self.output_dim), initializer,
                                          regularizer=self.embeddings_regularizer)
        if self.initial_weights is not None:
            self.set_weights(list(self.initial_weights))
            self.initial_weights = None

    def _prepare(self, inputs) -> Tensor:
        """Ids as they are: the float cast of Layer._prepare is for values, not ids."""
        ids = inputs.data if isinstance(inputs, Tensor) else inputs
        xp = get_array_module(self.embeddings.data) if self.built else backend.xp_default()
        return Tensor(xp.asarray(ids))

    def call(self, inputs: Tensor) -> Tensor:
        ids = inputs.data
        if ids.dtype.kind == "f":
            if ids.size and not bool((ids == ids.round()).all()):
                raise ValueError(f"Embedding '{self.name}': ids must be whole numbers, got {to_numpy(ids).ravel()[:5]}")
            ids = ids.astype("int64")
        elif ids.dtype.kind not in "iu":
            raise TypeError(f"Embedding '{self.name}': ids must be integers, got dtype {ids.dtype}")
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= self.input_dim):
            bad = int(ids.min()) if int(ids.min()) < 0 else int(ids.max())
            raise ValueError(f"Embedding '{self.name}': id {bad} is outside [0, {self.input_dim}) for "
                             f"input_dim={self.input_dim}")
        return F.getitem(self.embeddings, ids)

    def compute_mask(self, inputs: Tensor, mask):
        if not self.mask_zero:
            return None
        return inputs.data != 0

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape) + (self.output_dim,)

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "embeddings_initializer": config_name(self.embeddings_initializer),
                "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
                "mask_zero": self.mask_zero}
