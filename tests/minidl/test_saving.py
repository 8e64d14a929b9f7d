"""Saving: round trip, atomic writes, and clear refusals of bad files (nothing in them runs)."""
import io
import json
import os

import numpy as np
import pytest

from minidl import saving
from minidl.function import no_grad
from minidl.layers.base import LAYERS, Layer
from minidl.layers.core import Dense
from minidl.tensor import Tensor


class StandInModel(Layer):
    """The slice of Sequential's interface that saving uses: a list of layers, get_config,
    build(input_shape), built_input_shape, weights, get_weights/set_weights."""

    def __init__(self, layers=None, name=None):
        super().__init__(name=name or "stand_in")
        self.layers = list(layers or [])
        self.built_input_shape = None

    def sublayers(self):
        return self.layers

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
        self.built_input_shape = tuple(input_shape)

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def get_config(self):
        return {"name": self.name, "layers": [saving.serialize_layer(layer) for layer in self.layers]}


LAYERS.pop("StandInModel")  # a test double, not a layer the rest of the suite should see


@pytest.fixture
def model_classes(monkeypatch):
    monkeypatch.setattr(saving, "_model_classes", lambda: {"StandInModel": StandInModel})


def _model(units=(8, 3)):
    model = StandInModel([Dense(units[0], activation="relu"), Dense(units[1], activation="softmax")])
    model.build((None, 5))
    return model


def _predict(model, x):
    with no_grad():
        return model(Tensor(x)).numpy()


def test_round_trip_gives_the_same_predictions_and_metadata(tmp_path, rng, model_classes):
    model = _model()
    x = rng.standard_normal((4, 5)).astype(np.float32)
    path = tmp_path / "model.npz"
    metadata = {"labels": ["zero", "one", "two"], "sample_rate": 8000, "mfcc": {"n_mfcc": 13}}
    saving.save_model(model, path, metadata=metadata)
    again = saving.load_model(path)
    assert type(again) is StandInModel and again.built_input_shape == (None, 5)
    assert [type(layer).__name__ for layer in again.layers] == ["Dense", "Dense"]
    assert again.layers[0].get_config() == model.layers[0].get_config()
    np.testing.assert_array_equal(_predict(again, x), _predict(model, x))
    assert saving.read_metadata(path) == metadata
    # everything is readable without pickle, and the config is plain JSON
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["config", "weight_0000", "weight_0001", "weight_0002", "weight_0003"]
        document = json.loads(archive["config"].tobytes().decode("utf-8"))
    assert document["format"] == "minidl" and document["version"] == 1 and document["input_shape"] == [None, 5]


def test_weights_only_round_trip(tmp_path, rng):
    model, other = _model(), _model()
    path = tmp_path / "weights.npz"
    saving.save_weights(model, path)
    saving.load_weights(other, path)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="holds 4 weight arrays, but the model has 2"):
        saving.load_weights(StandInModel([_built_dense()]), path)
    with pytest.raises(ValueError, match="holds only weights"):
        saving.load_model(path)


def _built_dense():
    layer = Dense(3)
    layer.build((None, 5))
    return layer


def test_save_is_atomic_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    saving.save_model(_model(), path, metadata={"run": 1})
    before = path.read_bytes()

    def dies_half_way(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        saving.save_model(_model(), path, metadata={"run": 2})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]   # the temporary file is gone too


def test_metadata_must_be_json_able(tmp_path):
    with pytest.raises(ValueError, match=r"metadata must be JSON-able.*ndarray"):
        saving.save_model(_model(), tmp_path / "m.npz", metadata={"mean": np.zeros(3)})
    with pytest.raises(ValueError, match="metadata must be a dict"):
        saving.save_model(_model(), tmp_path / "m.npz", metadata=["a"])
    assert not os.listdir(tmp_path)


def _write(path, arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _config(**changes):
    document = {"format": "minidl", "version": 1, "class_name": "StandInModel", "input_shape": [None, 5],
                "metadata": None, "model": {"name": "m", "layers": [
                    {"class_name": "Dense", "config": {"units": 3}}]}}
    document.update(changes)
    return np.frombuffer(json.dumps(document).encode(), dtype=np.uint8)


def _good_weights():
    return {"weight_0000": np.zeros((5, 3), np.float32), "weight_0001": np.zeros(3, np.float32)}


@pytest.mark.parametrize("arrays, message", [
    ({"weight_0000": np.zeros(3)}, "has no 'config' entry"),
    ({"config": np.array([1.5, 2.0])}, "1-D uint8 array"),
    ({"config": np.frombuffer(b"{not json", np.uint8)}, "not valid UTF-8 JSON"),
    ({"config": np.frombuffer(b"\xff\xfe", np.uint8)}, "not valid UTF-8 JSON"),
    ({"config": np.frombuffer(b'{"format": "keras"}', np.uint8)}, "not a minidl config"),
    ({"config": _config(version=99)}, "version 99 is not supported"),
    ({"config": _config(model={"name": "m", "layers": [{"class_name": "os.system", "config": {}}]}),
      **_good_weights()}, r"unknown layer class 'os.system'; known layers: .*Dense"),
    ({"config": _config(model={"name": "m", "layers": [{"class_name": "Dense", "config": {"units": 3, "evil": 1}}]}),
      **_good_weights()}, r"cannot rebuild layer Dense .*evil"),
    ({"config": _config(model={"name": "m", "layers": "Dense"})}, "'layers' list"),
    ({"config": _config(class_name="Functional")}, "unknown model class 'Functional'"),
    ({"config": _config(), "weight_0000": np.zeros((5, 3), np.float32)}, "holds 1 weight arrays, but the model has 2"),
    ({"config": _config(), "weight_0000": np.zeros((4, 3), np.float32), "weight_0001": np.zeros(3, np.float32)},
     r"weight_0000 has shape \(4, 3\), but .*kernel has shape \(5, 3\)"),
    ({"config": _config(), "weight_0000": np.zeros((5, 3), np.float32), "weight_0002": np.zeros(3, np.float32)},
     "in sequence"),
    ({"config": _config(), "weight_0000": np.array(["a"]), "weight_0001": np.zeros(3)}, "dtype <U1, expected numbers"),
    ({"config": _config(input_shape="big"), **_good_weights()}, "input_shape must be a list"),
])
def test_bad_files_raise_clear_errors_naming_the_file(tmp_path, arrays, message, model_classes):
    path = tmp_path / "bad.npz"
    _write(path, arrays)
    with pytest.raises(ValueError, match=message) as info:
        saving.load_model(path)
    assert "bad.npz" in str(info.value)


def test_object_arrays_are_refused_and_never_unpickled(tmp_path, model_classes):
    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    path = tmp_path / "evil.npz"
    with open(path, "wb") as f:
        np.savez(f, config=_config(), weight_0000=np.array([Boom()], dtype=object))
    with pytest.raises(ValueError, match=r"evil.npz.*'weight_0000' cannot be read without pickle"):
        saving.load_model(path)
    assert not (tmp_path / "pwned").exists()


def test_not_an_npz(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match=r"notes.npz.*not a minidl .npz file"):
        saving.load_model(text)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="a single .npy array"):
        saving.load_model(single)
    with pytest.raises(FileNotFoundError):
        saving.load_model(tmp_path / "missing.npz")


def test_deserialize_layer_rebuilds_nested_wrapped_layers():
    class Wrap(Layer):  # a wrapper in the shape Bidirectional/TimeDistributed will have
        def __init__(self, layer, **kwargs):
            super().__init__(**kwargs)
            self.layer = layer

        def sublayers(self):
            return [self.layer]

        def get_config(self):
            return {**super().get_config(), "layer": saving.serialize_layer(self.layer)}

    try:
        _check_wrapper_round_trip(Wrap)
    finally:
        LAYERS.pop("Wrap")


def _check_wrapper_round_trip(Wrap):
    entry = saving.serialize_layer(Wrap(Wrap(Dense(4, activation="tanh"))))
    entry = json.loads(json.dumps(entry))
    rebuilt = saving.deserialize_layer(entry)
    assert type(rebuilt) is Wrap and type(rebuilt.layer) is Wrap and type(rebuilt.layer.layer) is Dense
    assert rebuilt.layer.layer.get_config()["activation"] == "tanh"
    layer = Dense(2)
    assert saving.deserialize_layer(layer) is layer
    deep = {"class_name": "Dense", "config": {"units": 1}}
    for _ in range(40):
        deep = {"class_name": "Wrap", "config": {"layer": deep}}
    with pytest.raises(ValueError, match="nested deeper"):
        saving.deserialize_layer(deep)
    with pytest.raises(ValueError, match="class_name"):
        saving.deserialize_layer({"config": {}})
