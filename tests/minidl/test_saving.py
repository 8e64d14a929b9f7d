"""Saving: round trip, atomic writes, and clear refusals of bad files (nothing in them runs)."""
import json
import os

import numpy as np
import pytest

from minidl import saving
from minidl.layers.core import Dense, Dropout, Input
from minidl.layers.serialization import LAYERS, MODELS, register_model
from minidl.models import Model, Sequential


def _model(units=(8, 3)):
    return Sequential([Input((5,)), Dense(units[0], activation="relu"), Dropout(0.5),
                       Dense(units[1], activation="softmax")])


def _predict(model, x):
    return model.predict(x)


def test_model_methods_round_trip_float64_and_input_shape_argument(tmp_path, rng):
    model = Sequential([Dense(4, activation="tanh", input_shape=(5,), dtype="float64"), Dense(2, dtype="float64")])
    x = rng.standard_normal((3, 5))
    path = tmp_path / "m64.npz"
    model.save(str(path))
    again = saving.load_model(path)
    assert again.weights[0].dtype == np.float64
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    model.save_weights(str(tmp_path / "w.npz"))
    other = Sequential([Dense(4, activation="tanh", input_shape=(5,), dtype="float64"), Dense(2, dtype="float64")])
    other.load_weights(str(tmp_path / "w.npz"))
    np.testing.assert_array_equal(other.predict(x), model.predict(x))


def test_round_trip_gives_the_same_predictions_and_metadata(tmp_path, rng):
    model = _model()
    x = rng.standard_normal((4, 5)).astype(np.float32)
    path = tmp_path / "model.npz"
    metadata = {"labels": ["zero", "one", "two"], "sample_rate": 8000, "mfcc": {"n_mfcc": 13}}
    saving.save_model(model, path, metadata=metadata)
    again = saving.load_model(path)
    assert type(again) is Sequential and again.built_input_shape == (None, 5)
    assert [type(layer).__name__ for layer in again.layers] == ["Dense", "Dropout", "Dense"]  # no InputLayer, as Keras
    assert again.get_config() == model.get_config()
    np.testing.assert_array_equal(_predict(again, x), _predict(model, x))
    assert saving.read_metadata(path) == metadata
    # everything is readable without pickle, and the config is plain JSON
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["config", "weight_0000", "weight_0001", "weight_0002", "weight_0003"]
        document = json.loads(archive["config"].tobytes().decode("utf-8"))
    assert document["format"] == "minidl" and document["version"] == 2 and document["input_shape"] == [None, 5]


def test_weights_only_round_trip(tmp_path, rng):
    model, other = _model(), _model()
    path = tmp_path / "weights.npz"
    saving.save_weights(model, path)
    saving.load_weights(other, path)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="holds 4 weight arrays, but the model has 2"):
        saving.load_weights(Sequential([Dense(3, input_shape=(5,))]), path)
    with pytest.raises(ValueError, match="holds only weights"):
        saving.load_model(path)


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
    document = {"format": "minidl", "version": 1, "class_name": "Sequential", "input_shape": [None, 5],
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
def test_bad_files_raise_clear_errors_naming_the_file(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    _write(path, arrays)
    with pytest.raises(ValueError, match=message) as info:
        saving.load_model(path)
    assert "bad.npz" in str(info.value)


def test_object_arrays_are_refused_and_never_unpickled(tmp_path):
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


def test_load_model_finds_the_model_class_by_its_registered_name(tmp_path, rng):
    @register_model
    class Stack(Sequential):  # a model class saving.py has never heard of, found by the registry
        pass

    try:
        model = Stack([Input((5,)), Dense(2)], name="stack")
        model.save(str(tmp_path / "stack.npz"))
        again = saving.load_model(tmp_path / "stack.npz")
        assert type(again) is Stack and again.name == "stack"
        x = rng.standard_normal((3, 5)).astype(np.float32)
        np.testing.assert_array_equal(again.predict(x), model.predict(x))
    finally:
        MODELS.pop("Stack")
        LAYERS.pop("Stack")


def test_model_checkpoint_files_from_fit_load_back(tmp_path, rng):
    from minidl.callbacks import ModelCheckpoint
    x = rng.standard_normal((64, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = Sequential([Input((5,)), Dense(8, activation="relu"), Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    pattern = str(tmp_path / "ckpt-{epoch:02d}-{loss:.3f}.npz")
    model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[ModelCheckpoint(pattern, monitor="loss")])
    files = sorted(p.name for p in tmp_path.iterdir())
    assert [f[:7] for f in files] == ["ckpt-01", "ckpt-02", "ckpt-03"]
    last = saving.load_model(tmp_path / files[-1])
    np.testing.assert_array_equal(last.predict(x), model.predict(x))


FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def test_a_model_file_saved_by_an_earlier_minidl_still_loads():
    # model_v1.npz was written once, at commit 5d9569b (before layers/serialization.py), by
    # Sequential.save: Input, Normalization (adapted), Masking, Conv1D, BatchNormalization (with
    # moving statistics moved by two epochs), Bidirectional(LSTM), TimeDistributed(Dense), GRU,
    # Dropout, Dense. model_v1_expected.npz holds an input batch and that model's predictions.
    # Never regenerate it: it pins what an old file holds, not what today's code writes.
    path = os.path.join(FIXTURES, "model_v1.npz")
    model = saving.load_model(path)
    assert model.name == "format_v1"
    assert [type(layer).__name__ for layer in model.layers] == [  # no InputLayer in model.layers, as Keras
        "Normalization", "Masking", "Conv1D", "BatchNormalization", "Bidirectional",
        "TimeDistributed", "GRU", "Dropout", "Dense"]
    assert model.count_params() == 473
    assert saving.read_metadata(path) == {"labels": ["a", "b", "c"], "made_at": "5d9569b"}
    with np.load(os.path.join(FIXTURES, "model_v1_expected.npz")) as expected:
        np.testing.assert_allclose(model.predict(expected["x"]), expected["y"], rtol=1e-5, atol=1e-6)


# --- a subclassed model whose class is registered ---------------------------------------------------
@saving.register_serializable()
class _Gated(Model):  # the leading _ keeps it out of tests/test_coverage.py's layer walk
    def __init__(self, units=4, rate=0.25, **kwargs):
        super().__init__(**kwargs)
        self.units, self.rate = units, rate
        self.hidden, self.drop, self.out = Dense(units, activation="relu"), Dropout(rate), Dense(2)

    def call(self, inputs, training=False):
        first, second = inputs
        return self.out(self.drop(self.hidden(first), training=training)) + second

    def get_config(self):
        return {"units": self.units, "rate": self.rate}


@pytest.fixture
def gated_class():
    yield _Gated
    LAYERS["_Gated"] = MODELS["_Gated"] = _Gated   # a test may take it out, as a new process would


def _gated_data(rng, n=32):
    x = [rng.normal(size=(n, 5)).astype("float32"), rng.normal(size=(n, 2)).astype("float32")]
    return x, rng.normal(size=(n, 2)).astype("float32")


def test_a_registered_subclassed_model_saves_loads_and_resumes_exactly(tmp_path, rng, gated_class):
    x, y = _gated_data(rng)
    model = _Gated(units=6)
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    model.save(str(tmp_path / "gated.npz"))
    again = saving.load_model(tmp_path / "gated.npz")
    assert type(again) is _Gated and again.units == 6 and again.rate == 0.25
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)   # shuffles and dropout from dl.random, as saved
    saving.load_model(tmp_path / "gated.npz")   # puts dl.random back where the save left it
    again.fit(x, y, batch_size=8, epochs=2, verbose=0)
    for left, right in zip(again.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(left, right)


def test_a_registered_subclass_is_found_only_in_this_process_or_custom_objects(tmp_path, rng, gated_class):
    x, _ = _gated_data(rng, 4)
    model = _Gated()
    model.predict(x)
    model.save(str(tmp_path / "gated.npz"))
    del MODELS["_Gated"], LAYERS["_Gated"]   # a process that has not defined the class
    with pytest.raises(saving.ModelFileError, match="unknown model class '_Gated'"):
        saving.load_model(tmp_path / "gated.npz")
    again = saving.load_model(tmp_path / "gated.npz", custom_objects={"_Gated": _Gated})
    np.testing.assert_array_equal(again.predict(x), model.predict(x))
    assert "_Gated" not in MODELS   # known only while that file was read


def test_an_unregistered_subclassed_model_is_refused_before_anything_is_written(tmp_path, rng):
    class _Plain(Model):
        def __init__(self):
            super().__init__()
            self.dense = Dense(2)

        def call(self, x):
            return self.dense(x)

    model = _Plain()
    model.predict(rng.normal(size=(2, 3)).astype("float32"))
    LAYERS.pop("_Plain", None)
    with pytest.raises(NotImplementedError, match="register_serializable"):
        model.save(str(tmp_path / "plain.npz"))
    assert not (tmp_path / "plain.npz").exists()
    model.save_weights(str(tmp_path / "plain.weights.npz"))   # the weights alone still save
