"""Scaled dot-product attention (Vaswani et al., 2017), built from differentiable primitives.

    scores = (q / √d_k) · kᵀ                    (batch, heads, T_q, T_k)
    A      = softmax over T_k of scores, masked positions excluded
    out    = dropout(A) · v                       (batch, heads, T_q, d_v)

A mask position that is False is set to -1e9 before the softmax and A to 0 there after it, as
Keras' Softmax layer does, so a query whose every key is masked attends to nothing (A = 0, not
uniform). No new Function: the gradient is that of matmul, softmax, where and dropout, each
checked on its own; the composite is gradient-checked in tests/minidl/functional/test_attention.py.
"""
from __future__ import annotations

import math

from minidl.backend import Array, get_array_module
from minidl.functional import activation, arithmetic, shape
from minidl.functional.dropout import dropout
from minidl.tensor import Tensor, as_tensor

MASKED_SCORE = -1e9  # Keras' large negative number for masked scores (float32 and wider)


def causal_mask(query_length: int, key_length: int, xp) -> Array:
    """(1, T_q, T_k) booleans, True where key position j ≤ query position i (Keras' lower triangle)."""
    rows = xp.arange(query_length)[:, None]
    columns = xp.arange(key_length)[None, :]
    return (rows >= columns)[None]


def scaled_dot_product_attention(query, key, value, mask: Array | None = None, dropout_rate: float = 0.0,
                                 training: bool = False) -> tuple[Tensor, Tensor]:
    """Attention of each query over the keys; see the module docstring for the equations.

    Args:
        query: (batch, heads, T_q, d_k). key: (batch, heads, T_k, d_k). value: (batch, heads, T_k, d_v).
        mask: None, or booleans broadcastable to (batch, heads, T_q, T_k); True lets a query attend.
        dropout_rate: dropout on the attention weights, in training only.
    Returns:
        (out (batch, heads, T_q, d_v), weights A (batch, heads, T_q, T_k), before dropout).
    """
    query, key, value = as_tensor(query), as_tensor(key), as_tensor(value)
    if query.ndim != 4 or key.ndim != 4 or value.ndim != 4:
        raise ValueError(f"scaled_dot_product_attention: query, key and value must be (batch, heads, steps, dim), "
                         f"got shapes {query.shape}, {key.shape}, {value.shape}")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: query and key must share their last axis and key and value "
                         f"their steps, got shapes {query.shape}, {key.shape}, {value.shape}")
    scaled = arithmetic.mul(query, 1.0 / math.sqrt(query.shape[-1]))
    scores = arithmetic.matmul(scaled, shape.transpose(key, (0, 1, 3, 2)))
    if mask is None:
        weights = activation.softmax(scores, axis=-1)
    else:
        xp = get_array_module(scores.data)
        keep = xp.broadcast_to(xp.asarray(mask, dtype=bool), scores.shape)
        weights = arithmetic.where(keep, activation.softmax(arithmetic.where(keep, scores, MASKED_SCORE), axis=-1), 0.0)
    dropped = dropout(weights, dropout_rate, training=training) if dropout_rate else weights
    return arithmetic.matmul(dropped, value), weights
