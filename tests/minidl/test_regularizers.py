"""Regularizers (minidl/regularizers.py): Keras' penalties and defaults, float64 gradient checks,
lookup and serialisation, and the penalty a layer adds to its loss."""
import json

import numpy as np
import pytest

import minidl as dl
from minidl import layers, regularizers
from minidl.regularizers import L1, L1L2, L2


def weights(rng, shape=(3, 4)):
    return rng.normal(size=shape)


def penalty(regularizer, w) -> float:
    return float(regularizer(dl.Tensor(w)).data)


def test_penalties_follow_keras_formulas(rng):
    w = weights(rng)
    assert penalty(L1(0.3), w) == pytest.approx(0.3 * np.abs(w).sum(), rel=1e-12)
    assert penalty(L2(0.2), w) == pytest.approx(0.2 * (w ** 2).sum(), rel=1e-12)   # no factor 1/2, as Keras
    assert penalty(L1L2(l1=0.3, l2=0.2), w) == pytest.approx(0.3 * np.abs(w).sum() + 0.2 * (w ** 2).sum(), rel=1e-12)


def test_keras_defaults_are_one_hundredth():
    assert L1().l1 == 0.01 and L2().l2 == 0.01
    assert L1L2().l1 == 0.0 and L1L2().l2 == 0.0  # Keras' L1L2 defaults to no penalty at all


def test_a_zero_penalty_is_still_a_scalar_tensor_with_a_zero_gradient(rng):
    w = dl.Tensor(weights(rng), requires_grad=True)
    value = L1L2()(w)
    assert value.shape == () and float(value.data) == 0.0
    value.backward()
    np.testing.assert_array_equal(w.grad, np.zeros(w.shape))


@pytest.mark.parametrize("regularizer", [
    pytest.param(L1(0.3), id="L1"), pytest.param(L2(0.2), id="L2"),
    pytest.param(L1L2(l1=0.1, l2=0.5), id="L1L2")])
def test_penalty_gradient(rng, regularizer):
    w = weights(rng, (2, 3, 2))
    w[np.abs(w) < 1e-3] = 0.5  # |w| has a kink at 0; keep the finite differences off it
    dl.gradcheck(regularizer, (w,))


def test_l1_gradient_is_the_sign_and_l2_gradient_twice_the_weight():
    w = dl.Tensor(np.array([-2.0, 0.5, 3.0]), requires_grad=True)
    L1(0.1)(w).backward()
    np.testing.assert_allclose(w.grad, [-0.1, 0.1, 0.1])
    w.grad = None
    L2(0.1)(w).backward()
    np.testing.assert_allclose(w.grad, [-0.4, 0.1, 0.6])


@pytest.mark.parametrize("name, cls, config", [
    ("l1", L1, {"l1": 0.01}), ("l2", L2, {"l2": 0.01}), ("l1_l2", L1L2, {"l1": 0.0, "l2": 0.0}),
    ("L1", L1, {"l1": 0.01}), ("L2", L2, {"l2": 0.01}), ("L1L2", L1L2, {"l1": 0.0, "l2": 0.0})])
def test_get_by_keras_name(name, cls, config):
    regularizer = regularizers.get(name)
    assert type(regularizer) is cls and regularizer.get_config() == config


def test_get_passes_none_and_objects_through():
    assert regularizers.get(None) is None
    regularizer = L2(0.5)
    assert regularizers.get(regularizer) is regularizer


@pytest.mark.parametrize("regularizer", [L1(0.25), L2(0.125), L1L2(l1=0.5, l2=0.75)], ids=["L1", "L2", "L1L2"])
def test_serialize_then_get_rebuilds_the_same_regularizer(regularizer):
    entry = json.loads(json.dumps(regularizers.serialize(regularizer)))
    assert entry == {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}
    again = regularizers.get(entry)
    assert type(again) is type(regularizer) and again.get_config() == regularizer.get_config()
    assert regularizers.serialize(None) is None


@pytest.mark.parametrize("identifier, message", [
    ("l3", r"unknown regularizer 'l3'; known: l1, l2, l1_l2"),
    (0.01, r"unknown regularizer 0.01"),
    ({"class_name": "os.system", "config": {}}, r"unknown regularizer class 'os.system' .*known: L1, L1L2, L2"),
])
def test_unknown_regularizers_are_refused_with_a_message(identifier, message):
    with pytest.raises(ValueError, match=message):
        regularizers.get(identifier)


def test_a_layer_adds_its_penalties_and_a_model_adds_its_layers(rng):
    model = dl.Sequential([layers.Dense(4, kernel_regularizer="l2", bias_regularizer=L1(0.5), input_shape=(3,),
                                        bias_initializer="ones", dtype="float64"),
                           layers.Dense(2, dtype="float64"),
                           layers.Dense(1, kernel_regularizer=L1(0.2), dtype="float64")])
    first, _, last = model.layers
    expected = (0.01 * (first.kernel.numpy() ** 2).sum() + 0.5 * np.abs(first.bias.numpy()).sum()
                + 0.2 * np.abs(last.kernel.numpy()).sum())
    assert float(model.regularization_loss().data) == pytest.approx(expected, rel=1e-12)
    assert model.layers[1].regularization_loss() is None


def test_the_penalty_is_part_of_the_loss_fit_minimises(rng):
    x, y = rng.normal(size=(8, 3)), rng.normal(size=(8, 1))
    model = dl.Sequential([layers.Dense(1, kernel_regularizer=L2(0.1), input_shape=(3,), dtype="float64")])
    model.compile(optimizer="sgd", loss="mse")
    data_loss = float(((model.predict(x) - y) ** 2).mean())
    kernel_penalty = 0.1 * (model.layers[0].kernel.numpy() ** 2).sum()
    assert model.evaluate(x, y, verbose=0) == pytest.approx(data_loss + kernel_penalty, rel=1e-10)


def test_penalties_match_live_keras(rng):
    keras = pytest.importorskip("keras")
    w = weights(rng).astype("float32")
    for theirs, ours in [(keras.regularizers.L1(0.3), L1(0.3)), (keras.regularizers.L2(0.2), L2(0.2)),
                         (keras.regularizers.L1L2(l1=0.1, l2=0.4), L1L2(l1=0.1, l2=0.4))]:
        expected = float(keras.ops.convert_to_numpy(theirs(w)))
        assert penalty(ours, w) == pytest.approx(expected, rel=1e-5), type(ours).__name__
