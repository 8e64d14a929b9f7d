"""Activations (minidl/functional/activation.py): values against their formulas, float64 gradient
checks, and numerical stability at the extremes."""
import numpy as np
import pytest

import minidl as dl
import minidl.functional as F

ELEMENTWISE = [  # the op and its formula, written out in NumPy
    pytest.param(F.tanh, np.tanh, id="tanh"),
    pytest.param(F.sigmoid, lambda x: 1 / (1 + np.exp(-x)), id="sigmoid"),
    pytest.param(F.relu, lambda x: np.maximum(x, 0), id="relu"),
    pytest.param(F.leaky_relu, lambda x: np.where(x > 0, x, 0.2 * x), id="leaky_relu"),
    pytest.param(F.elu, lambda x: np.where(x > 0, x, np.exp(x) - 1), id="elu"),
]


@pytest.mark.parametrize("shape", [(1,), (3, 4), (2, 1, 5), ()], ids=["one", "3x4", "2x1x5", "scalar"])
@pytest.mark.parametrize("op, reference", ELEMENTWISE)
def test_elementwise_activation_value_and_gradient(rng, op, reference, shape):
    x = rng.normal(size=shape)
    np.testing.assert_allclose(op(dl.Tensor(x)).data, reference(x), rtol=1e-12, atol=1e-15)
    dl.gradcheck(op, (x,))


def test_leaky_relu_and_elu_take_their_alpha():
    x = np.array([-2.0, -0.5, 1.5])
    np.testing.assert_allclose(F.leaky_relu(dl.Tensor(x), alpha=0.1).data, [-0.2, -0.05, 1.5])
    np.testing.assert_allclose(F.elu(dl.Tensor(x), alpha=2.0).data, [2 * (np.exp(-2) - 1), 2 * (np.exp(-0.5) - 1), 1.5])


SOFTMAX_CASES = [pytest.param((3, 4), -1, id="3x4-last"), pytest.param((2, 3, 4), 1, id="2x3x4-middle"),
                 pytest.param((1, 5), -1, id="batch-1"), pytest.param((4,), 0, id="vector")]


def softmax_reference(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("shape, axis", SOFTMAX_CASES)
@pytest.mark.parametrize("op, reference", [
    pytest.param(F.softmax, softmax_reference, id="softmax"),
    pytest.param(F.log_softmax, lambda x, axis: np.log(softmax_reference(x, axis)), id="log_softmax")])
def test_softmax_family_value_and_gradient(rng, op, reference, shape, axis):
    x = rng.normal(size=shape)
    np.testing.assert_allclose(op(dl.Tensor(x), axis=axis).data, reference(x, axis), rtol=1e-12)
    dl.gradcheck(lambda x: op(x, axis=axis), (x,))


def test_softmax_is_stable_for_large_inputs():
    y = F.softmax(dl.Tensor(np.array([[1000.0, 0.0], [-1000.0, 0.0]])))
    np.testing.assert_allclose(y.data, [[1.0, 0.0], [0.0, 1.0]])
    assert np.isfinite(F.log_softmax(dl.Tensor(np.array([1e4, 0.0]))).data).all()


def test_sigmoid_does_not_overflow_float32():
    with np.errstate(over="raise"):
        y = F.sigmoid(dl.Tensor(np.array([-1000.0, 1000.0], dtype=np.float32)))
    np.testing.assert_allclose(y.data, [0.0, 1.0])


def test_get_activation_knows_keras_names_and_refuses_others():
    assert F.get_activation("relu") is F.relu and F.get_activation(None) is F.linear
    assert F.get_activation(np.tanh) is np.tanh  # a callable is used as it is
    with pytest.raises(ValueError, match=r"unknown activation 'swishy'; known: .*relu"):
        F.get_activation("swishy")
