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


# --- the Keras activations beyond the first five --------------------------------------------------
def _softplus(x):
    return np.logaddexp(0, x)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _gelu_exact(x):
    from scipy.special import erf
    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


KERAS_ACTIVATIONS = [  # (minidl op, NumPy formula, the keras.activations function and its kwargs)
    pytest.param(F.selu, lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(x)),
                 "selu", {}, id="selu"),
    pytest.param(F.gelu, _gelu_exact, "gelu", {"approximate": False}, id="gelu"),
    pytest.param(lambda x: F.gelu(x, approximate=True),
                 lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))),
                 "gelu", {"approximate": True}, id="gelu-approximate"),
    pytest.param(F.silu, lambda x: x * _sigmoid(x), "silu", {}, id="silu"),
    pytest.param(F.swish, lambda x: x * _sigmoid(x), "swish", {}, id="swish"),
    pytest.param(F.softplus, _softplus, "softplus", {}, id="softplus"),
    pytest.param(F.softsign, lambda x: x / (1 + np.abs(x)), "softsign", {}, id="softsign"),
    pytest.param(F.hard_sigmoid, lambda x: np.clip(x / 6 + 0.5, 0, 1), "hard_sigmoid", {}, id="hard_sigmoid"),
    pytest.param(F.hard_silu, lambda x: x * np.clip(x / 6 + 0.5, 0, 1), "hard_silu", {}, id="hard_silu"),
    pytest.param(F.hard_swish, lambda x: x * np.clip(x / 6 + 0.5, 0, 1), "hard_swish", {}, id="hard_swish"),
    pytest.param(F.mish, lambda x: x * np.tanh(_softplus(x)), "mish", {}, id="mish"),
    pytest.param(F.exponential, np.exp, "exponential", {}, id="exponential"),
    pytest.param(F.relu6, lambda x: np.clip(x, 0, 6), "relu6", {}, id="relu6"),
    pytest.param(lambda x: F.relu_with_options(x, negative_slope=0.1, max_value=2.5, threshold=0.5),
                 lambda x: np.where(x >= 2.5, 2.5, np.where(x >= 0.5, x, 0.1 * (x - 0.5))),
                 "relu", {"negative_slope": 0.1, "max_value": 2.5, "threshold": 0.5}, id="relu-options"),
]


def _away_from_kinks(rng, shape):
    """Normal draws scaled to reach ±3 (hard_sigmoid's corners), nudged off every kink
    (0, 0.5, 2.5, ±3, 6) where a central difference straddles two pieces."""
    x = rng.normal(scale=2.5, size=shape)
    for kink in (0.0, 0.5, 2.5, 3.0, -3.0, 6.0):
        x = np.where(np.abs(x - kink) < 1e-3, x + 0.01, x)
    return x


@pytest.mark.parametrize("op, reference, keras_name, keras_kwargs", KERAS_ACTIVATIONS)
def test_keras_activation_value_and_gradient(rng, op, reference, keras_name, keras_kwargs):
    x = _away_from_kinks(rng, (4, 7))
    np.testing.assert_allclose(op(dl.Tensor(x)).data, reference(x), rtol=1e-10, atol=1e-12)
    dl.gradcheck(op, (x,))


@pytest.mark.parametrize("op, reference, keras_name, keras_kwargs", KERAS_ACTIVATIONS)
def test_keras_activation_matches_keras_live(rng, op, reference, keras_name, keras_kwargs):
    keras = pytest.importorskip("keras")
    x = _away_from_kinks(rng, (3, 9)).astype("float32")
    expected = keras.ops.convert_to_numpy(getattr(keras.activations, keras_name)(x, **keras_kwargs))
    np.testing.assert_allclose(op(dl.Tensor(x)).data, expected, rtol=1e-5, atol=1e-6)
    assert F.get_activation(keras_name) is not None


def test_prelu_value_and_gradient_with_a_shared_axis(rng):
    x = _away_from_kinks(rng, (3, 4, 5))
    alpha = rng.uniform(0.05, 0.5, size=(1, 5))        # shared over the time axis, as shared_axes=[1]
    np.testing.assert_allclose(F.prelu(dl.Tensor(x), dl.Tensor(alpha)).data, np.where(x > 0, x, alpha * x))
    dl.gradcheck(F.prelu, (x, alpha))


def test_softplus_and_mish_do_not_overflow():
    with np.errstate(over="raise"):
        x = dl.Tensor(np.array([-1000.0, 1000.0], dtype=np.float32))
        np.testing.assert_allclose(F.softplus(x).data, [0.0, 1000.0])
        np.testing.assert_allclose(F.mish(x).data, [0.0, 1000.0])


def test_a_keras_activation_minidl_lacks_is_named_as_not_supported():
    with pytest.raises(NotImplementedError, match=r"Keras activation 'celu' is not supported"):
        F.get_activation("celu")
