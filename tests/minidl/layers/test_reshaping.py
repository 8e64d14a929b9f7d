"""Permute, RepeatVector, UpSampling1D/2D, Cropping1D/2D (minidl/layers/reshaping.py) against
Keras live, with a float64 gradient check of each, the configs that rebuild them and a saved
model that loads back."""
import numpy as np
import pytest

import minidl as dl
from minidl import layers
from minidl.layers.serialization import deserialize_layer, serialize_layer

CASES = [  # (class name, kwargs, input shape)
    ("Permute", {"dims": (2, 1)}, (2, 3, 4)),
    ("Permute", {"dims": (3, 1, 2)}, (2, 3, 4, 5)),
    ("RepeatVector", {"n": 3}, (2, 4)),
    ("UpSampling1D", {"size": 3}, (2, 4, 2)),
    ("UpSampling1D", {}, (1, 3, 5)),
    ("Cropping1D", {"cropping": (1, 2)}, (2, 6, 3)),
    ("Cropping1D", {"cropping": 1}, (2, 4, 3)),
    ("UpSampling2D", {}, (2, 3, 4, 2)),
    ("UpSampling2D", {"size": (3, 1)}, (1, 2, 3, 1)),
    ("UpSampling2D", {"size": (2, 3), "interpolation": "bilinear"}, (2, 3, 4, 2)),
    ("UpSampling2D", {"size": 3, "interpolation": "bilinear"}, (1, 1, 2, 3)),
    ("Cropping2D", {"cropping": 1}, (2, 4, 5, 3)),
    ("Cropping2D", {"cropping": (1, 2)}, (1, 4, 5, 2)),
    ("Cropping2D", {"cropping": ((0, 2), (1, 0))}, (2, 3, 3, 1)),
    ("Cropping2D", {}, (1, 2, 2, 1)),
]
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(CASES)]


@pytest.mark.parametrize("class_name, kwargs, shape", CASES, ids=IDS)
def test_reshaping_layers_match_keras_live(rng, class_name, kwargs, shape):
    keras = pytest.importorskip("keras")
    x = rng.normal(size=shape).astype("float32")
    expected = keras.ops.convert_to_numpy(getattr(keras.layers, class_name)(**kwargs)(x))
    ours = getattr(layers, class_name)(**kwargs)(x).numpy()
    if kwargs.get("interpolation") == "bilinear":  # weighted sums, rounded in another order
        np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)
    else:
        np.testing.assert_array_equal(ours, expected)


def test_bilinear_upsampling_interpolates_between_pixel_centres():
    """One axis by hand: input pixel centres sit at (i + ½)·2 on the doubled axis, so the outputs
    between two of them are the 3:1 and 1:3 mixtures, and the ends repeat the edge pixel."""
    x = np.array([0.0, 4.0, 8.0], dtype="float32").reshape(1, 3, 1, 1)
    y = layers.UpSampling2D((2, 1), interpolation="bilinear")(x).numpy().ravel()
    np.testing.assert_allclose(y, [0, 1, 3, 5, 7, 8])


@pytest.mark.parametrize("class_name, kwargs, shape", CASES, ids=IDS)
def test_reshaping_layer_gradient(rng, class_name, kwargs, shape):
    layer = getattr(layers, class_name)(dtype="float64", **kwargs)
    dl.gradcheck(layer, (rng.normal(size=shape),))


@pytest.mark.parametrize("class_name, kwargs, shape", CASES, ids=IDS)
def test_config_rebuilds_the_same_layer(rng, class_name, kwargs, shape):
    x = rng.normal(size=shape).astype("float32")
    layer = getattr(layers, class_name)(**kwargs)
    np.testing.assert_array_equal(deserialize_layer(serialize_layer(layer))(x).numpy(), layer(x).numpy())


@pytest.mark.parametrize("make, message", [
    (lambda: layers.Permute((1, 3)), r"dims must be a permutation of 1..2"),
    (lambda: layers.RepeatVector(0), "n must be a positive int"),
    (lambda: layers.Cropping1D((3, 3))(np.zeros((1, 6, 2))), r"cropping \(3, 3\) leaves no steps"),
    (lambda: layers.UpSampling1D(2)(np.zeros((1, 6))), r"expects a 3-D input"),
    (lambda: layers.UpSampling2D((2, 0)), r"size must be positive"),
    (lambda: layers.UpSampling2D(2)(np.zeros((1, 6, 2))), r"expects a 4-D input"),
    (lambda: layers.Cropping2D(((1, 1), (2, 3)))(np.zeros((1, 6, 5, 1))), r"cropping \(\(1, 1\), \(2, 3\)\) leaves"),
    (lambda: layers.Cropping2D((1, 2, 3)), r"cropping must be an int, \(rows, columns\)"),
    (lambda: layers.Cropping2D(((1, -1), 0)), r"cropping must be an int >= 0 or a pair"),
])
def test_errors_name_the_argument(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("make, message", [
    (lambda: layers.UpSampling2D(interpolation="bicubic"), r"interpolation 'bicubic' is not supported"),
    (lambda: layers.UpSampling2D(data_format="channels_first"), r"data_format='channels_first' is not supported"),
    (lambda: layers.Cropping2D(data_format="channels_first"), r"data_format='channels_first' is not supported"),
])
def test_what_keras_has_and_minidl_lacks_says_not_supported(make, message):
    with pytest.raises(NotImplementedError, match=message):
        make()


def test_saved_model_with_2d_reshaping_layers_loads_back(tmp_path, rng):
    model = dl.Sequential([layers.Input((4, 5, 2)), layers.Cropping2D(((1, 0), (0, 2))),
                           layers.UpSampling2D((2, 1), interpolation="bilinear"), layers.UpSampling2D(2),
                           layers.Dense(3)])
    x = rng.normal(size=(2, 4, 5, 2)).astype("float32")
    path = tmp_path / "model.npz"
    dl.saving.save_model(model, path)
    loaded = dl.load_model(path)
    assert [layer.get_config() for layer in loaded.layers] == [layer.get_config() for layer in model.layers]
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    assert loaded(x).shape == (2, 12, 6, 3)
