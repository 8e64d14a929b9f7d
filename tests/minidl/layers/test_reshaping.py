"""Permute, RepeatVector, UpSampling1D, Cropping1D (minidl/layers/reshaping.py) against Keras
live, with a float64 gradient check of each and the configs that rebuild them."""
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
]
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(CASES)]


@pytest.mark.parametrize("class_name, kwargs, shape", CASES, ids=IDS)
def test_reshaping_layers_match_keras_live(rng, class_name, kwargs, shape):
    keras = pytest.importorskip("keras")
    x = rng.normal(size=shape).astype("float32")
    expected = keras.ops.convert_to_numpy(getattr(keras.layers, class_name)(**kwargs)(x))
    np.testing.assert_array_equal(getattr(layers, class_name)(**kwargs)(x).numpy(), expected)


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
])
def test_errors_name_the_argument(make, message):
    with pytest.raises(ValueError, match=message):
        make()
