"""Lambda (minidl/layers/lambda_layer.py): values as Keras' Lambda (live), saved by registered
name only, loading needs the registration, and nothing from a file is ever run."""
import json
import zipfile

import numpy as np
import pytest

import minidl as dl
import minidl.functional as F
from minidl import layers
from minidl.layers.lambda_layer import LAMBDA_FUNCTIONS


def scaled_square(x, scale=2.0):
    return x * x * scale


def test_lambda_matches_keras_live(rng):
    keras = pytest.importorskip("keras")
    x = rng.normal(size=(2, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(keras.layers.Lambda(scaled_square, arguments={"scale": 0.5})(x))
    np.testing.assert_allclose(layers.Lambda(scaled_square, arguments={"scale": 0.5})(x).numpy(), expected, rtol=1e-6)


def test_lambda_gradient(rng):
    dl.gradcheck(layers.Lambda(lambda x: F.tanh(x) * 3.0, dtype="float64"), (rng.normal(size=(2, 3)),))


@pytest.fixture
def registered():
    layers.register_lambda_function(scaled_square)
    yield
    LAMBDA_FUNCTIONS.pop("scaled_square", None)


def test_a_saved_lambda_holds_the_name_and_loads_when_registered(tmp_path, rng, registered):
    model = dl.Sequential([layers.Input((3,)), layers.Dense(2), layers.Lambda(scaled_square)])
    x = rng.normal(size=(4, 3)).astype("float32")
    path = tmp_path / "model.npz"
    dl.saving.save_model(model, path)
    with zipfile.ZipFile(path) as archive:
        stored = b"".join(archive.read(name) for name in archive.namelist())
    assert b'"function": "scaled_square"' in stored and b"x * x * scale" not in stored
    with np.load(path, allow_pickle=False) as archive:  # no object arrays: nothing to unpickle
        assert all(archive[name].dtype != object for name in archive.files)
    np.testing.assert_allclose(dl.load_model(path)(x).numpy(), model(x).numpy())


def test_loading_a_lambda_without_its_registration_names_it(tmp_path, registered):
    model = dl.Sequential([layers.Input((3,)), layers.Lambda(scaled_square)])
    path = tmp_path / "model.npz"
    dl.saving.save_model(model, path)
    LAMBDA_FUNCTIONS.pop("scaled_square")
    with pytest.raises(ValueError, match=r"function 'scaled_square' is not registered; call "
                                         r"minidl.layers.register_lambda_function"):
        dl.load_model(path)


def test_an_unregistered_function_cannot_be_saved(tmp_path):
    model = dl.Sequential([layers.Input((3,)), layers.Lambda(lambda x: x + 1.0)])
    with pytest.raises(ValueError, match="is not registered, so it cannot be saved"):
        dl.saving.save_model(model, tmp_path / "model.npz")


def test_registration_refuses_nameless_and_clashing_functions(registered):
    with pytest.raises(ValueError, match="give a named function"):
        layers.register_lambda_function(lambda x: x)
    layers.register_lambda_function(lambda x: x, name="identity_for_test")
    with pytest.raises(ValueError, match="the name 'identity_for_test' is taken"):
        layers.register_lambda_function(lambda x: x, name="identity_for_test")
    LAMBDA_FUNCTIONS.pop("identity_for_test")
    assert json.dumps(layers.Lambda(scaled_square).get_config())  # a registered Lambda's config is JSON
