import pathlib

import numpy as np
import pytest

import minidl as dl
import minidl.functional as F
from minidl import layers

FIXTURES = pathlib.Path(__file__).parents[2] / "reference" / "fixtures"


@pytest.mark.parametrize("case", ["linear", "relu", "softmax", "tanh_3d"])
def test_dense_equals_keras_fixture(case):
    data = np.load(FIXTURES / "core_dense.npz", allow_pickle=False)
    activation = case.split("_")[0]
    layer = layers.Dense(data[f"{case}/kernel"].shape[1], activation=activation)
    layer(data[f"{case}/x"])
    layer.set_weights([data[f"{case}/kernel"], data[f"{case}/bias"]])
    np.testing.assert_allclose(layer(data[f"{case}/x"]).data, data[f"{case}/y"], atol=1e-5, rtol=1e-5)


def test_dense_equals_live_keras():
    keras = pytest.importorskip("keras")
    x = np.random.default_rng(0).normal(size=(6, 5)).astype("float32")
    theirs = keras.layers.Dense(4, activation="relu")
    expected = theirs(x).detach().cpu().numpy()
    ours = layers.Dense(4, activation="relu")
    ours(x)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(ours(x).data, expected, atol=1e-5, rtol=1e-5)


def test_dense_gradcheck_float64():
    dl.set_floatx("float64")
    layer = layers.Dense(3, activation="tanh")
    x = np.random.default_rng(0).normal(size=(2, 4))
    layer(x)
    dl.gradcheck(lambda inputs: layer(inputs), (x,))

    def with_weights(inputs, kernel, bias):
        return F.tanh(F.affine(inputs, kernel, bias))
    dl.gradcheck(with_weights, (x, layer.kernel.numpy(), layer.bias.numpy() + 0.1))


def test_dense_names_expected_and_received_shape():
    layer = layers.Dense(4)
    layer(dl.Tensor(np.zeros((2, 3))))
    with pytest.raises(ValueError, match=r"built for 3 input features, .* shape \(2, 5\)"):
        layer(dl.Tensor(np.zeros((2, 5))))


def test_dense_weights_use_keras_names_layouts_and_defaults():
    layer = layers.Dense(5, name="head")
    layer(np.zeros((1, 3), dtype="float32"))
    assert [w.name for w in layer.weights] == ["head/kernel", "head/bias"]
    assert layer.kernel.shape == (3, 5) and layer.bias.shape == (5,)
    assert layer.kernel.dtype == np.float32
    limit = np.sqrt(6 / (3 + 5))  # glorot_uniform
    assert np.abs(layer.kernel.data).max() <= limit and np.all(layer.bias.data == 0)


def test_dtype_argument_gives_a_float64_layer():
    layer = layers.Dense(2, dtype="float64")
    y = layer(np.ones((1, 3), dtype="float32"))
    assert layer.kernel.dtype == np.float64 and y.dtype == np.float64


def test_get_config_rebuilds_the_layer():
    layer = layers.Dense(7, activation="relu", use_bias=False, kernel_regularizer="l2", name="d")
    again = layers.Dense(**layer.get_config())
    assert again.get_config() == layer.get_config()


def test_set_weights_checks_count_and_shapes():
    layer = layers.Dense(2)
    layer(np.ones((1, 3), dtype="float32"))
    with pytest.raises(ValueError, match="expected 2 arrays"):
        layer.set_weights([np.ones((3, 2))])
    with pytest.raises(ValueError, match=r"has shape \(3, 2\), got an array of shape \(2, 3\)"):
        layer.set_weights([np.ones((2, 3)), np.ones(2)])


def test_l2_regularizer_adds_keras_penalty():
    layer = layers.Dense(2, kernel_regularizer=dl.regularizers.L2(0.1), dtype="float64")
    layer(np.ones((1, 3)))
    expected = 0.1 * np.sum(layer.kernel.data ** 2)
    np.testing.assert_allclose(layer.regularization_loss().data, expected)


def test_unknown_activation_lists_known_names():
    with pytest.raises(ValueError, match="unknown activation 'swishy'; known: .*relu"):
        layers.Dense(2, activation="swishy")


def test_unknown_constructor_argument_is_refused():
    with pytest.raises(TypeError, match="unknown argument"):
        layers.Dense(2, kernel_size=3)


def test_dropout_is_off_at_inference_and_on_in_training():
    layer = layers.Dropout(0.5)
    x = np.ones((50, 40), dtype="float32")
    np.testing.assert_array_equal(layer(x).data, x)
    y = layer(x, training=True).data
    assert 0.4 < (y == 0).mean() < 0.6


def test_flatten_reshape_activation():
    x = np.arange(24, dtype="float32").reshape(2, 3, 4)
    assert layers.Flatten()(x).shape == (2, 12)
    assert layers.Reshape((4, 3))(x).shape == (2, 4, 3)
    assert layers.Reshape((-1, 2))(x).shape == (2, 6, 2)
    with pytest.raises(ValueError, match="cannot reshape samples of shape"):
        layers.Reshape((5,))(x)
    np.testing.assert_allclose(layers.Activation("relu")(x - 10).data, np.maximum(x - 10, 0))


def test_input_layer_checks_sample_shape():
    layer = layers.InputLayer((3,))  # layers.Input gives its symbolic tensor, as keras.Input
    with pytest.raises(ValueError, match=r"expected samples of shape \(3,\), got a batch of shape \(2, 4\)"):
        layer(np.ones((2, 4), dtype="float32"))


def test_masks_pass_through_dense_and_stop_at_flatten():
    x = dl.Tensor(np.ones((2, 3, 4), dtype="float32"))
    x.mask = np.array([[True, True, False], [True, False, False]])
    y = layers.Dense(2)(x)
    np.testing.assert_array_equal(y.mask, x.mask)
    assert layers.Flatten()(y).mask is None


def test_set_weights_copies_so_training_leaves_the_callers_arrays_alone():
    layer = layers.Dense(2)
    layer(np.ones((1, 3), dtype="float32"))
    given = [np.ones((3, 2), dtype="float32"), np.zeros(2, dtype="float32")]
    layer.set_weights(given)
    layer.kernel.data += 1.0
    np.testing.assert_array_equal(given[0], 1.0)
