"""MultiHeadAttention: Keras' layer, with Keras' call arguments and weight layout.

    mha = layers.MultiHeadAttention(num_heads=4, key_dim=16)
    y = mha(query, value)                        # cross-attention; key defaults to value
    y = mha(x, x, use_causal_mask=True)          # causal self-attention
    y, scores = mha(x, x, return_attention_scores=True)
"""
from __future__ import annotations

import minidl.functional as F
from minidl import regularizers
from minidl.backend import get_array_module
from minidl.functional.attention import causal_mask, scaled_dot_product_attention
from minidl.layers.base import Layer
from minidl.layers.core import config_name
from minidl.tensor import Tensor


class MultiHeadAttention(Layer):
    """Multi-head attention (Vaswani et al., 2017), as Keras' ``MultiHeadAttention``.

    For each head h = 1..H, with query Q (B, T, d_q), key K and value V (B, S, d_k / d_v):

        q_h = Q·Wq_h + bq_h      k_h = K·Wk_h + bk_h      v_h = V·Wv_h + bv_h
        A_h = softmax_S(q_h·k_hᵀ / √key_dim  masked by M)          (B, T, S)
        O_h = dropout(A_h)·v_h                                       (B, T, value_dim)
        Y   = Σ_h O_h·Wo_h + bo                                      (B, T, d_out)

    Weights, in Keras' layout and order (``get_weights()`` of Keras' layer loads as is):
    query/kernel (d_q, H, key_dim), query/bias (H, key_dim), key/kernel (d_k, H, key_dim),
    key/bias (H, key_dim), value/kernel (d_v, H, value_dim), value/bias (H, value_dim),
    attention_output/kernel (H, value_dim, d_out), attention_output/bias (d_out,).

    The mask M (True: may attend) is the logical and of ``attention_mask`` (B, T, S), the
    query's mask (B, T, 1) and the value's (and key's) mask (B, 1, S) (from ``query_mask`` /
    ``value_mask`` / ``key_mask`` or the masks the inputs carry, e.g. from Embedding with
    mask_zero), and the causal mask j ≤ i with ``use_causal_mask``. A query with no key left
    gets zero attention weights. The output carries the query's mask. (Keras 3.15 ignores an
    explicit ``query_mask`` argument and reads only the query's own mask; minidl honours both.
    Keras also gives a query with every key masked zero weights only on its explicit path, with
    ``return_attention_scores`` or dropout; its fused kernel attends uniformly there. minidl
    always gives zero weights.)

    Args:
        num_heads: H. key_dim: size of each query and key head. value_dim: size of each value
            head (default key_dim). dropout: on the attention weights, in training.
        use_bias: whether the four projections have biases. output_shape: d_out (default d_q).
        attention_axes: only None (attend over the time axis of (B, T, d) inputs) is supported.
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer: as Dense's.
    Call arguments:
        query (B, T, d_q), value (B, S, d_v), key (B, S, d_k; default value), query_mask (B, T),
        value_mask (B, S), key_mask (B, S), attention_mask (B, T, S), return_attention_scores,
        training, use_causal_mask.
    Returns:
        Y (B, T, d_out); with return_attention_scores, (Y, A) with A (B, H, T, S).
    """

    def __init__(self, num_heads: int, key_dim: int, value_dim: int | None = None, dropout: float = 0.0,
                 use_bias: bool = True, output_shape=None, attention_axes=None, flash_attention=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, seed=None, **kwargs):
        for unsupported in ("sliding_window", "use_gate", "activity_regularizer", "kernel_constraint",
                            "bias_constraint"):
            if kwargs.pop(unsupported, None) not in (None, False):
                raise NotImplementedError(f"MultiHeadAttention: {unsupported} is not supported by minidl")
        super().__init__(**kwargs)
        for name, value in (("num_heads", num_heads), ("key_dim", key_dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"MultiHeadAttention: {name} must be a positive int, got {value!r}")
        if value_dim is not None and (not isinstance(value_dim, int) or value_dim <= 0):
            raise ValueError(f"MultiHeadAttention: value_dim must be a positive int or None, got {value_dim!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"MultiHeadAttention: dropout must be in [0, 1), got {dropout!r}")
        if attention_axes is not None:
            raise NotImplementedError("MultiHeadAttention: attention_axes is not supported by minidl; it attends "
                                      "over the time axis of (batch, time, features) inputs")
        if flash_attention:
            raise NotImplementedError("MultiHeadAttention: flash_attention is not supported by minidl")
        if isinstance(output_shape, (list, tuple)):
            if len(output_shape) != 1:
                raise NotImplementedError(f"MultiHeadAttention: an output_shape of several axes {output_shape} is "
                                          "not supported by minidl; give one size")
            output_shape = output_shape[0]
        self.num_heads, self.key_dim = num_heads, key_dim
        self.value_dim = value_dim or key_dim
        self.dropout, self.use_bias, self.output_size = float(dropout), bool(use_bias), output_shape
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.seed = seed  # kept for the config; dropout draws from minidl's generator
        self.supports_masking = True

    # --- weights ------------------------------------------------------------------------------------
    def _projection(self, name: str, kernel_shape: tuple, bias_shape: tuple):
        kernel = self.add_weight(f"{name}/kernel", kernel_shape, self.kernel_initializer,
                                 regularizer=self.kernel_regularizer)
        bias = (self.add_weight(f"{name}/bias", bias_shape, self.bias_initializer, regularizer=self.bias_regularizer)
                if self.use_bias else None)
        return kernel, bias

    def build(self, query_shape, value_shape=None, key_shape=None):
        value_shape = value_shape or query_shape
        key_shape = key_shape or value_shape
        for what, shape in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            if len(shape) != 3:
                raise NotImplementedError(f"MultiHeadAttention '{self.name}': {what} of shape {tuple(shape)}: only "
                                          "(batch, time, features) inputs are supported by minidl")
        heads = self.num_heads
        self.query_dim, self.key_input_dim, self.value_input_dim = query_shape[-1], key_shape[-1], value_shape[-1]
        output_size = self.output_size or self.query_dim
        self.query_kernel, self.query_bias = self._projection("query", (self.query_dim, heads, self.key_dim),
                                                              (heads, self.key_dim))
        self.key_kernel, self.key_bias = self._projection("key", (self.key_input_dim, heads, self.key_dim),
                                                          (heads, self.key_dim))
        self.value_kernel, self.value_bias = self._projection("value", (self.value_input_dim, heads, self.value_dim),
                                                              (heads, self.value_dim))
        self.output_kernel, self.output_bias = self._projection("attention_output",
                                                                (heads, self.value_dim, output_size), (output_size,))
        self.built = True

    # --- calling ------------------------------------------------------------------------------------
    def _heads(self, x: Tensor, kernel: Tensor, bias: Tensor | None, expected: int, what: str) -> Tensor:
        """(B, T, d) -> (B, H, T, head size): x·W + b with W (d, H, size) flattened to (d, H·size)."""
        if x.ndim != 3 or x.shape[-1] != expected:
            raise ValueError(f"MultiHeadAttention '{self.name}' was built for {what} of shape (batch, time, "
                             f"{expected}), got {x.shape}")
        d, heads, size = kernel.shape
        flat = F.affine(x, F.reshape(kernel, (d, heads * size)),
                        None if bias is None else F.reshape(bias, (heads * size,)))
        return F.transpose(F.reshape(flat, (x.shape[0], x.shape[1], heads, size)), (0, 2, 1, 3))

    def __call__(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
                 attention_mask=None, return_attention_scores: bool = False, training: bool | None = None,
                 use_causal_mask: bool = False):
        query, value = self._prepare(query), self._prepare(value)
        key_given = key is not None and key is not value
        key = self._prepare(key) if key_given else value
        if not self.built:
            self.build(tuple(query.shape), tuple(value.shape), tuple(key.shape))
        query_mask = query.mask if query_mask is None else query_mask
        value_mask = value.mask if value_mask is None else value_mask
        key_mask = (key.mask if key_given else None) if key_mask is None else key_mask
        mask = self._attention_mask(query, value, query_mask, value_mask, key_mask, attention_mask, use_causal_mask)
        q = self._heads(query, self.query_kernel, self.query_bias, self.query_dim, "queries")
        k = self._heads(key, self.key_kernel, self.key_bias, self.key_input_dim, "keys")
        v = self._heads(value, self.value_kernel, self.value_bias, self.value_input_dim, "values")
        if k.shape[2] != v.shape[2]:
            raise ValueError(f"MultiHeadAttention '{self.name}': key and value must have the same number of steps, "
                             f"got shapes {key.shape} and {value.shape}")
        attended, scores = scaled_dot_product_attention(q, k, v, None if mask is None else mask[:, None],
                                                        self.dropout, bool(training))
        batch, heads, steps, size = attended.shape
        merged = F.reshape(F.transpose(attended, (0, 2, 1, 3)), (batch, steps, heads * size))
        output = F.affine(merged, F.reshape(self.output_kernel, (heads * size, self.output_kernel.shape[-1])),
                          self.output_bias)
        output.mask = None if query_mask is None else getattr(query_mask, "data", query_mask)
        return (output, scores) if return_attention_scores else output

    def _attention_mask(self, query: Tensor, value: Tensor, query_mask, value_mask, key_mask, attention_mask,
                        use_causal_mask: bool):
        """The (B, T, S) boolean mask of the docstring, or None when nothing is masked."""
        xp = get_array_module(query.data)
        batch, steps, sources = query.shape[0], query.shape[1], value.shape[1]
        parts = []
        for what, given, shape in (("query_mask", query_mask, (batch, steps, 1)),
                                   ("value_mask", value_mask, (batch, 1, sources)),
                                   ("key_mask", key_mask, (batch, 1, sources)),
                                   ("attention_mask", attention_mask, None)):
            if given is None:
                continue
            given = xp.asarray(getattr(given, "data", given))
            try:
                given = given.reshape(shape) if shape is not None else xp.broadcast_to(given, (batch, steps, sources))
            except ValueError:
                expected = (batch, steps, sources) if shape is None else (batch, max(shape[1:]))
                raise ValueError(f"MultiHeadAttention '{self.name}': {what} must have shape {expected}, "
                                 f"got {tuple(given.shape)}") from None
            parts.append(given.astype(bool))
        if use_causal_mask:
            parts.append(causal_mask(steps, sources, xp))
        if not parts:
            return None
        mask = parts[0]
        for part in parts[1:]:
            mask = mask & part
        return xp.broadcast_to(mask, (batch, steps, sources))

    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None) -> tuple:
        return tuple(query_shape[:-1]) + (self.output_size or query_shape[-1],)

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "dropout": self.dropout, "use_bias": self.use_bias,
                "output_shape": self.output_size, "attention_axes": None, "seed": self.seed,
                "kernel_initializer": config_name(self.kernel_initializer),
                "bias_initializer": config_name(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer)}
