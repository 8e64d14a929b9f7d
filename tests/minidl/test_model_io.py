"""to_json / model_from_json / clone_model (minidl/model_io.py): the architecture without weights."""
import json

import numpy as np
import pytest

import minidl as dl
from minidl import layers
from minidl.layers.serialization import LAYERS


def graph():
    x = dl.Input((6,), name="x")
    left, right = layers.Dense(4, name="left")(x), layers.Dense(4, name="right")(x)
    return dl.Model(x, layers.Dense(2, name="out")(layers.Concatenate(name="join")([left, right])), name="g")


@pytest.mark.parametrize("build", [graph, lambda: dl.Sequential([layers.Dense(3, input_shape=(6,)), layers.Dense(2)])])
def test_json_round_trip_gives_the_architecture_with_fresh_weights(build):
    model = build()
    text = model.to_json()
    assert json.loads(text)["class_name"] == type(model).__name__
    again = dl.model_from_json(text)
    assert type(again) is type(model) and again.get_config() == model.get_config()
    assert not all(np.array_equal(a, b) for a, b in zip(again.get_weights(), model.get_weights()))
    again.set_weights(model.get_weights())
    x = np.random.default_rng(0).normal(size=(3, 6)).astype("float32")
    np.testing.assert_array_equal(again.predict(x), model.predict(x))


def test_clone_model_keeps_names_and_shapes_not_weights():
    model = graph()
    clone = dl.clone_model(model)
    assert clone is not model and [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]
    assert clone.get_layer("out").kernel is not model.get_layer("out").kernel


class _Unregistered(dl.Model):  # the leading _ keeps test classes out of tests/test_coverage.py's walk
    def __init__(self, units=2, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = layers.Dense(units)

    def call(self, x):
        return self.dense(x)

    def get_config(self):
        return {"units": self.units}


@dl.saving.register_serializable()
class _NoConfig(dl.Model):
    def __init__(self):
        super().__init__()
        self.dense = layers.Dense(2)

    def call(self, x):
        return self.dense(x)


@dl.saving.register_keras_serializable(package="Tests")   # Keras' name for the same decorator
class _Pair(dl.Model):
    """Two inputs as a dict, joined: a subclassed model whose architecture can be saved."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.left, self.right = layers.Dense(units, activation="tanh"), layers.Dense(units)
        self.head = layers.Dense(1)

    def call(self, inputs):
        return self.head(layers.Concatenate()([self.left(inputs["a"]), self.right(inputs["b"])]))

    def get_config(self):
        return {"units": self.units}


@pytest.fixture(scope="module", autouse=True)
def _forget_test_classes():
    yield
    from minidl.layers.serialization import MODELS
    for name in ("_Unregistered", "_NoConfig", "_Pair", "_Renamed", "_OldScale"):
        LAYERS.pop(name, None)
        MODELS.pop(name, None)


def pair_inputs(n=5):
    rng = np.random.default_rng(1)
    return {"a": rng.normal(size=(n, 4)).astype("float32"), "b": rng.normal(size=(n, 2)).astype("float32")}


def test_a_registered_subclassed_model_round_trips_through_json_and_clone_model():
    model = _Pair(units=5)
    x = pair_inputs()
    model.predict(x)
    document = json.loads(model.to_json())
    assert document["subclassed"] and document["config"] == {"units": 5}
    assert document["input_shapes"] == {"a": [None, 4], "b": [None, 2]}
    clone = dl.clone_model(model)
    assert type(clone) is _Pair and clone.units == 5
    assert [w.shape for w in clone.get_weights()] == [w.shape for w in model.get_weights()]
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone.predict(x), model.predict(x))


def test_a_subclassed_model_unregistered_or_without_get_config_is_refused_saying_what_to_add():
    for model in (_Unregistered(), _NoConfig()):
        model.predict(np.ones((2, 3), "float32"))
        with pytest.raises(NotImplementedError, match="register_serializable.*get_config"):
            dl.clone_model(model)


def test_model_from_json_takes_custom_objects_for_a_class_named_otherwise():
    class _Scale(layers.Layer):
        def call(self, x):
            return x * 3.0

    model = dl.Sequential([layers.Input((2,)), _Scale(name="scale")])
    text = model.to_json().replace('"_Scale"', '"_OldScale"')   # as saved under an older class name
    with pytest.raises(ValueError, match="unknown layer class '_OldScale'"):
        dl.model_from_json(text)
    again = dl.model_from_json(text, custom_objects={"_OldScale": _Scale})
    assert isinstance(again.layers[0], _Scale) and "_OldScale" not in LAYERS  # known only while read
    np.testing.assert_array_equal(again.predict(np.ones((1, 2), "float32")), [[3.0, 3.0]])
    with pytest.raises(ValueError, match="minidl's own Dense"):
        dl.model_from_json(text, custom_objects={"Dense": _Scale})
    LAYERS.pop("_Scale", None)


def test_register_serializable_refuses_a_name_other_than_the_class_name():
    with pytest.raises(ValueError, match="by its class name"):
        dl.saving.register_serializable(name="Other")(type("_Renamed", (dl.Model,), {"call": lambda self, x: x}))


@pytest.mark.parametrize("text, message", [
    ("{", "not JSON"),
    ('{"format": "keras"}', "expected the JSON of model.to_json"),
    ('{"format": "minidl", "class_name": "Evil", "config": {}}', "unknown model class 'Evil'"),
])
def test_model_from_json_refuses_what_it_cannot_read(text, message):
    with pytest.raises(ValueError, match=message):
        dl.model_from_json(text)
