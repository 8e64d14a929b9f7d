"""Conv1DTranspose and Conv2DTranspose (minidl/layers/conv_transpose.py): against Keras live
from the same weights (set from the Keras layer, and through dl.from_keras / dl.export.keras),
Keras' weight shapes, float64 gradient checks of the layers, configs that rebuild them, a
saved model that loads back, and the errors."""
import numpy as np
import pytest

import minidl as dl
from minidl import layers
from minidl.layers.serialization import deserialize_layer, serialize_layer

CASES = [  # (class name, kwargs, input shape)
    ("Conv2DTranspose", {"filters": 3, "kernel_size": 3}, (2, 4, 5, 2)),
    ("Conv2DTranspose", {"filters": 2, "kernel_size": (3, 2), "strides": 2, "padding": "same"}, (2, 3, 4, 3)),
    ("Conv2DTranspose", {"filters": 4, "kernel_size": 2, "strides": (3, 2), "padding": "valid",
                         "output_padding": (2, 1), "activation": "relu"}, (1, 3, 3, 2)),
    ("Conv2DTranspose", {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same", "output_padding": 1,
                         "use_bias": False}, (2, 3, 3, 1)),
    ("Conv2DTranspose", {"filters": 3, "kernel_size": (2, 3), "dilation_rate": (2, 1), "padding": "same",
                         "activation": "tanh"}, (1, 4, 4, 2)),
    ("Conv1DTranspose", {"filters": 3, "kernel_size": 3}, (2, 5, 2)),
    ("Conv1DTranspose", {"filters": 2, "kernel_size": 4, "strides": 2, "padding": "same"}, (2, 6, 3)),
    ("Conv1DTranspose", {"filters": 2, "kernel_size": 3, "strides": 3, "output_padding": 2,
                         "activation": "sigmoid"}, (1, 4, 2)),
    ("Conv1DTranspose", {"filters": 4, "kernel_size": 2, "dilation_rate": 3, "use_bias": False}, (2, 3, 1)),
]
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(CASES)]


def _built(layer, shape):
    layer(np.zeros(shape, dtype=layer.dtype))  # a call builds the weights and marks the layer built
    return layer


def _random_bias(layer, rng):
    # Keras starts biases at zero, which would leave the bias untested
    if layer.bias is not None:
        layer.bias.data = rng.normal(size=layer.bias.shape).astype(layer.bias.dtype)


@pytest.mark.parametrize("class_name, kwargs, shape", CASES, ids=IDS)
def test_layer_matches_keras_live(rng, class_name, kwargs, shape):
    keras = pytest.importorskip("keras")
    x = rng.normal(size=shape).astype("float32")
    theirs = getattr(keras.layers, class_name)(**kwargs)
    theirs.build(shape)
    ours = _built(getattr(layers, class_name)(**kwargs), shape)
    assert [w.shape for w in ours.get_weights()] == [tuple(w.shape) for w in theirs.get_weights()]
    _random_bias(ours, rng)
    theirs.set_weights(ours.get_weights())
    expected = keras.ops.convert_to_numpy(theirs(x))
    np.testing.assert_allclose(ours(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert ours.compute_output_shape((None,) + shape[1:]) == tuple(theirs.compute_output_shape((None,) + shape[1:]))


def test_keras_model_imports_and_exports_with_the_same_outputs_live(rng):
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((4, 3, 2)),
                              keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same", activation="relu"),
                              keras.layers.Cropping2D(((1, 0), (0, 1))),
                              keras.layers.UpSampling2D((1, 2)),
                              keras.layers.Reshape((7 * 10, 3)),
                              keras.layers.Conv1DTranspose(2, 3, strides=2, output_padding=1)])
    for weight in model.weights:  # random biases too
        weight.assign(rng.normal(size=weight.shape).astype("float32"))
    x = rng.normal(size=(2, 4, 3, 2)).astype("float32")
    ours = dl.from_keras(model)
    np.testing.assert_allclose(ours.predict(x), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    exported = dl.export.keras(ours)
    np.testing.assert_allclose(exported.predict(x, verbose=0), ours.predict(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("class_name, kwargs, shape", CASES, ids=IDS)
def test_layer_gradient(rng, class_name, kwargs, shape):
    """Through the input and the activation; the kernel and bias gradients are checked on the op
    (tests/minidl/functional/test_conv_transpose.py)."""
    layer = _built(getattr(layers, class_name)(dtype="float64", **kwargs), shape)
    _random_bias(layer, rng)
    x = rng.normal(size=shape)
    dl.gradcheck(layer, (x,))


@pytest.mark.parametrize("class_name, kwargs, shape", CASES, ids=IDS)
def test_config_rebuilds_the_same_layer(rng, class_name, kwargs, shape):
    x = rng.normal(size=shape).astype("float32")
    layer = getattr(layers, class_name)(**kwargs)
    layer(x)
    rebuilt = _built(deserialize_layer(serialize_layer(layer)), shape)
    assert rebuilt.get_config() == layer.get_config()
    rebuilt.set_weights(layer.get_weights())
    np.testing.assert_array_equal(rebuilt(x).numpy(), layer(x).numpy())


def test_config_keys_are_keras_keys_live():
    keras = pytest.importorskip("keras")
    for class_name, kwargs, _ in CASES[:1] + CASES[5:6]:
        ours = set(getattr(layers, class_name)(**kwargs).get_config())
        theirs = set(getattr(keras.layers, class_name)(**kwargs).get_config())
        assert ours - theirs == set(), f"{class_name}: minidl config keys Keras lacks: {ours - theirs}"


def test_saved_models_load_back(tmp_path, rng):
    x = rng.normal(size=(2, 3, 4, 2)).astype("float32")
    sequential = dl.Sequential([layers.Input((3, 4, 2)),
                                layers.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=1),
                                layers.Reshape((6 * 8, 3)), layers.Conv1DTranspose(2, 2, strides=2, activation="tanh")])
    inputs = layers.Input((3, 4, 2))
    up = layers.Conv2DTranspose(2, (2, 1), strides=(2, 1), activation="relu")(inputs)
    functional = dl.Model(inputs, layers.Add()([up, layers.UpSampling2D((2, 1))(layers.Dense(2)(inputs))]))
    for index, model in enumerate((sequential, functional)):
        for weight in model.weights:
            weight.data = rng.normal(size=weight.shape).astype("float32")
        path = tmp_path / f"model{index}.npz"
        dl.saving.save_model(model, path)
        loaded = dl.load_model(path)
        np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    # 'same' with output_padding 1: (3 - 1)·2 + 3 % 2 + 1 = 6 rows, 8 columns; then (48 - 1)·2 + 2 steps
    assert sequential.output_shape == (None, 96, 2) and functional.output_shape == (None, 6, 4, 2)


def test_a_layer_built_for_some_channels_names_the_mismatch():
    layer = layers.Conv2DTranspose(2, 3)
    layer(np.zeros((1, 4, 4, 3), "float32"))
    with pytest.raises(ValueError, match=r"was built for 3 input channels, got an input of shape \(1, 4, 4, 2\)"):
        layer(np.zeros((1, 4, 4, 2), "float32"))
    with pytest.raises(ValueError, match=r"expects a 3-D input \(batch, steps, channels\)"):
        layers.Conv1DTranspose(2, 3)(np.zeros((1, 4, 4, 3), "float32"))


@pytest.mark.parametrize("make, message", [
    (lambda: layers.Conv2DTranspose(0, 3), r"filters must be a positive int, got 0"),
    (lambda: layers.Conv2DTranspose(2, (3, 3, 3)), r"kernel_size must be an int or 2 ints"),
    (lambda: layers.Conv1DTranspose(2, 3, padding="causal"), r"padding must be 'valid' or 'same', got 'causal'"),
    (lambda: layers.Conv2DTranspose(2, 3, strides=2, output_padding=(1, 2)),
     r"output_padding \(1, 2\) must be less than strides \(2, 2\)"),
    (lambda: layers.Conv1DTranspose(2, 3, output_padding=-1), r"output_padding must be None, an int or 1 ints >= 0"),
    (lambda: layers.Conv2DTranspose(2, 2, padding="same", output_padding=0)(np.zeros((1, 1, 3, 1), "float32")),
     r"spatial axis 0 of length 1 gives an empty output"),
])
def test_bad_arguments_name_the_argument(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_channels_first_is_named_as_not_supported():
    for cls in (layers.Conv1DTranspose, layers.Conv2DTranspose):
        with pytest.raises(NotImplementedError, match=r"data_format='channels_first' is not supported"):
            cls(2, 3, data_format="channels_first")
