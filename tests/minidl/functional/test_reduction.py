"""Reductions (minidl/functional/reduction.py): values against NumPy, float64 gradient checks,
empty inputs and ties."""
import numpy as np
import pytest

import minidl as dl
import minidl.functional as F

REDUCTION_CASES = [pytest.param((3, 4), None, False, id="all"), pytest.param((3, 4), 0, True, id="axis0-keepdims"),
                   pytest.param((2, 3, 4), (0, 2), False, id="two-axes"),
                   pytest.param((1, 5), -1, False, id="batch-1-last"), pytest.param((5,), 0, True, id="vector-keepdims"),
                   pytest.param((), None, False, id="scalar")]


@pytest.mark.parametrize("shape, axis, keepdims", REDUCTION_CASES)
@pytest.mark.parametrize("op, reference", [pytest.param(F.sum, np.sum, id="sum"),
                                           pytest.param(F.mean, np.mean, id="mean"),
                                           pytest.param(F.max, np.max, id="max")])
def test_reduction_value_and_gradient(rng, op, reference, shape, axis, keepdims):
    x = rng.normal(size=shape)
    np.testing.assert_allclose(op(dl.Tensor(x), axis=axis, keepdims=keepdims).data,
                               reference(x, axis=axis, keepdims=keepdims))
    dl.gradcheck(lambda x: op(x, axis=axis, keepdims=keepdims), (x,))


def test_sum_and_mean_of_empty_reductions():
    empty = dl.Tensor(np.zeros((0, 3)), requires_grad=True)
    np.testing.assert_allclose(F.sum(empty, axis=0).data, [0, 0, 0])
    F.sum(empty).backward()
    assert empty.grad.shape == (0, 3)
    with pytest.raises(ValueError, match="empty tensor"):
        F.max(dl.Tensor(np.zeros((0,))))


def test_max_shares_the_gradient_between_ties():
    x = dl.Tensor(np.array([1.0, 3.0, 3.0]), requires_grad=True)
    F.max(x).backward()
    np.testing.assert_allclose(x.grad, [0.0, 0.5, 0.5])
