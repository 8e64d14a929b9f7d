"""Activation layers (minidl/layers/activations.py) against Keras live, from the same weights,
plus PReLU's gradient and the configs that rebuild each layer."""
import numpy as np
import pytest

import minidl as dl
from minidl import layers
from minidl.layers.serialization import deserialize_layer, serialize_layer

CASES = [  # (class name, constructor kwargs); the same for minidl and Keras
    ("ReLU", {}), ("ReLU", {"max_value": 2.0, "negative_slope": 0.1, "threshold": 0.5}),
    ("LeakyReLU", {}), ("LeakyReLU", {"negative_slope": 0.05}),
    ("ELU", {"alpha": 0.7}),
    ("PReLU", {}), ("PReLU", {"shared_axes": [1]}),
    ("Softmax", {}), ("Softmax", {"axis": 1}),
]


def _inputs(rng):
    x = rng.normal(scale=2.0, size=(2, 5, 4)).astype("float32")
    return np.where(np.abs(x - 0.5) < 1e-2, x + 0.05, x)


@pytest.mark.parametrize("class_name, kwargs", CASES, ids=[f"{c}-{i}" for i, (c, _) in enumerate(CASES)])
def test_activation_layers_match_keras_live(rng, class_name, kwargs):
    keras = pytest.importorskip("keras")
    x = _inputs(rng)
    theirs = getattr(keras.layers, class_name)(**kwargs)
    theirs.build(x.shape)
    ours = getattr(layers, class_name)(**kwargs)
    ours(x)  # builds
    if class_name == "PReLU":  # Keras starts alpha at zeros; give both the same nonzero alpha
        alpha = rng.uniform(0.1, 0.4, size=theirs.get_weights()[0].shape).astype("float32")
        theirs.set_weights([alpha])
        ours.set_weights([alpha])
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()]
    expected = keras.ops.convert_to_numpy(theirs(x))
    np.testing.assert_allclose(ours(x).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_softmax_with_a_mask_matches_keras_live(rng):
    keras = pytest.importorskip("keras")
    x = _inputs(rng)
    mask = rng.random((2, 5, 4)) > 0.4
    mask[0, 1] = False  # a wholly masked row: 0, not uniform
    expected = keras.ops.convert_to_numpy(keras.layers.Softmax()(x, mask=mask))
    got = layers.Softmax()(x, mask=mask).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(got[0, 1], 0.0)


def test_softmax_refuses_a_mask_that_does_not_broadcast(rng):
    with pytest.raises(ValueError, match=r"mask of shape \(2, 3\) must be broadcastable to the inputs of shape"):
        layers.Softmax()(_inputs(rng), mask=np.ones((2, 3), bool))


def test_prelu_layer_gradient_reaches_alpha(rng):
    layer = layers.PReLU(alpha_initializer="random_uniform", shared_axes=[1], dtype="float64")
    x = np.where(np.abs(x := rng.normal(size=(3, 4, 2))) < 1e-3, 0.1, x)
    layer(x)
    assert layer.alpha.shape == (1, 2)

    def through_layer(inputs, alpha):
        layer.alpha = alpha  # the layer's call reads self.alpha: this checks the layer's own path
        return layer(inputs)
    dl.gradcheck(through_layer, (x, layer.alpha.data.copy()))


@pytest.mark.parametrize("class_name, kwargs", CASES, ids=[f"{c}-{i}" for i, (c, _) in enumerate(CASES)])
def test_config_rebuilds_the_same_layer(rng, class_name, kwargs):
    x = _inputs(rng)
    layer = getattr(layers, class_name)(**kwargs)
    y = layer(x).numpy()
    twin = deserialize_layer(serialize_layer(layer))
    twin(x)
    twin.set_weights(layer.get_weights())
    np.testing.assert_array_equal(twin(x).numpy(), y)


def test_unsupported_keras_arguments_say_so():
    with pytest.raises(NotImplementedError, match="alpha_constraint is not supported"):
        layers.PReLU(alpha_constraint="non_neg")
    with pytest.raises(NotImplementedError, match="several axes"):
        layers.Softmax(axis=(1, 2))


def test_a_keras_layer_minidl_lacks_is_named_as_not_supported():
    with pytest.raises(AttributeError, match="the Keras layer 'ConvLSTM2D' is not supported by minidl"):
        layers.ConvLSTM2D  # noqa: B018 (the attribute access is what is tested)
    with pytest.raises(ValueError, match="the Keras layer 'Conv3DTranspose' is not supported by minidl"):
        deserialize_layer({"class_name": "Conv3DTranspose", "config": {}})
    keras = pytest.importorskip("keras")
    from minidl.layers.serialization import KERAS_ONLY_LAYERS
    assert all(hasattr(keras.layers, name) for name in KERAS_ONLY_LAYERS)  # each is a real Keras name
