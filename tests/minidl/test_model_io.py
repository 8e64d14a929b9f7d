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


def test_a_subclassed_model_cannot_be_cloned_and_says_why():
    class Net(dl.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    try:
        with pytest.raises(NotImplementedError, match="subclassed"):
            dl.clone_model(Net())
    finally:
        LAYERS.pop("Net", None)   # out of the registry that tests/test_coverage.py walks


@pytest.mark.parametrize("text, message", [
    ("{", "not JSON"),
    ('{"format": "keras"}', "expected the JSON of model.to_json"),
    ('{"format": "minidl", "class_name": "Evil", "config": {}}', "unknown model class 'Evil'"),
])
def test_model_from_json_refuses_what_it_cannot_read(text, message):
    with pytest.raises(ValueError, match=message):
        dl.model_from_json(text)
