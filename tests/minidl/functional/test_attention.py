"""Scaled dot-product attention (minidl/functional/attention.py): the equations written out in
NumPy, masks (a fully masked query attends to nothing), and a float64 gradient check."""
import numpy as np
import pytest

import minidl as dl
from minidl.functional.attention import causal_mask, scaled_dot_product_attention


def reference(q, k, v, mask=None):
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    shifted = np.exp(scores - scores.max(-1, keepdims=True, initial=-1e300))
    weights = shifted / np.maximum(shifted.sum(-1, keepdims=True), 1e-300)
    weights = np.nan_to_num(weights)
    return weights @ v, weights


def test_attention_value_matches_the_equations_with_a_mask(rng):
    q, k, v = rng.normal(size=(2, 3, 4, 5)), rng.normal(size=(2, 3, 6, 5)), rng.normal(size=(2, 3, 6, 2))
    mask = rng.random((2, 1, 4, 6)) > 0.3
    mask[1, 0, 2] = False  # every key masked for one query: zero weights, zero output
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    expected_out, expected_weights = reference(q, k, v, mask)
    np.testing.assert_allclose(weights.data, expected_weights, atol=1e-12)
    np.testing.assert_allclose(out.data, expected_out, atol=1e-12)
    np.testing.assert_array_equal(out.data[1, :, 2], 0.0)


def test_causal_mask_is_the_lower_triangle():
    np.testing.assert_array_equal(causal_mask(3, 4, np)[0], np.tril(np.ones((3, 4), bool)))


def test_attention_gradient(rng):
    q, k, v = rng.normal(size=(1, 2, 3, 4)), rng.normal(size=(1, 2, 5, 4)), rng.normal(size=(1, 2, 5, 3))
    mask = np.broadcast_to(causal_mask(3, 5, np)[:, None], (1, 2, 3, 5))
    dl.gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, mask)[0], (q, k, v))
    dl.gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v)[1], (q, k, v))


def test_attention_refuses_mismatched_shapes(rng):
    with pytest.raises(ValueError, match="query and key must share their last axis"):
        scaled_dot_product_attention(rng.normal(size=(1, 1, 2, 3)), rng.normal(size=(1, 1, 2, 4)),
                                     rng.normal(size=(1, 1, 2, 4)))
