"""Layers to and from JSON: the registries, serialize_layer / deserialize_layer, and refusals."""
import json

import numpy as np
import pytest

import minidl as dl
from minidl import layers
from minidl.layers.base import Layer
from minidl.layers.serialization import (LAYERS, MAX_CONFIG_INT, MAX_DEPTH, MODELS, check_config_numbers,
                                         current_size_budget, deserialize_layer, is_layer, output_lower_bound,
                                         register_model, serialize_layer, short_repr, size_budget,
                                         weight_lower_bound)


def _through_json(entry: dict) -> dict:
    return json.loads(json.dumps(entry))


ROUND_TRIP = [
    pytest.param(lambda: layers.Dense(3, activation="tanh", use_bias=False), id="Dense"),
    pytest.param(lambda: layers.Conv1D(4, 3, strides=2, padding="same", activation="relu"), id="Conv1D"),
    pytest.param(lambda: layers.Conv2D(2, (3, 1), dilation_rate=(2, 1)), id="Conv2D"),
    pytest.param(lambda: layers.MaxPooling1D(3, strides=1, padding="same"), id="MaxPooling1D"),
    pytest.param(lambda: layers.BatchNormalization(momentum=0.9, epsilon=1e-4), id="BatchNormalization"),
    pytest.param(lambda: layers.LSTM(5, return_sequences=True, go_backwards=True), id="LSTM"),
    pytest.param(lambda: layers.GRU(2, dropout=0.25, return_state=True), id="GRU"),
    pytest.param(lambda: layers.Bidirectional(layers.SimpleRNN(3, return_sequences=True), merge_mode="sum"),
                 id="Bidirectional"),
    pytest.param(lambda: layers.TimeDistributed(layers.Dense(2)), id="TimeDistributed"),
    pytest.param(lambda: layers.Dropout(0.3, noise_shape=(None, 1, 4)), id="Dropout"),
    pytest.param(lambda: layers.Masking(-1.0), id="Masking"),
]


@pytest.mark.parametrize("make", ROUND_TRIP)
def test_a_layer_survives_json_with_its_class_and_config(make):
    layer = make()
    entry = _through_json(serialize_layer(layer))
    assert entry["class_name"] == type(layer).__name__
    rebuilt = deserialize_layer(entry)
    assert type(rebuilt) is type(layer)
    assert _through_json(rebuilt.get_config()) == entry["config"]


def test_every_layer_class_is_registered_by_its_name():
    for name in ("Dense", "Conv1D", "LSTM", "GRU", "Bidirectional", "TimeDistributed", "InputLayer", "Sequential"):
        assert LAYERS[name].__name__ == name
    assert MODELS["Sequential"] is dl.Sequential

    class Made(Layer):  # a subclass defined anywhere enters the registry when it is defined
        pass

    try:
        assert LAYERS["Made"] is Made and is_layer(Made()) and "Made" not in MODELS
    finally:
        LAYERS.pop("Made")


def test_register_model_adds_a_model_class_and_returns_it():
    class Toy:
        pass

    try:
        assert register_model(Toy) is Toy and MODELS["Toy"] is Toy
    finally:
        MODELS.pop("Toy")


def test_is_layer_tells_layers_from_configs_and_other_objects():
    assert is_layer(layers.Dense(2)) and is_layer(dl.Sequential())
    assert not is_layer({"class_name": "Dense", "config": {}})
    assert not is_layer("Dense") and not is_layer(None)


def test_a_sequential_nested_as_a_layer_is_rebuilt_with_its_layers():
    inner = dl.Sequential([layers.Dense(4, activation="relu"), layers.Dense(2)], name="inner")
    outer = dl.Sequential([layers.Input((3,)), inner, layers.Dense(1)])
    rebuilt = dl.Sequential.from_config(_through_json(outer.get_config()))
    assert [type(layer).__name__ for layer in rebuilt.layers] == ["Sequential", "Dense"]  # no InputLayer, as Keras
    assert rebuilt.layers[0].name == "inner"
    assert [type(layer).__name__ for layer in rebuilt.layers[0].layers] == ["Dense", "Dense"]
    assert rebuilt.layers[0].layers[0].get_config()["activation"] == "relu"


def test_deserialize_layer_rebuilds_nested_wrapped_layers():
    class Wrap(Layer):  # a wrapper in the shape of Bidirectional and TimeDistributed
        def __init__(self, layer, **kwargs):
            super().__init__(**kwargs)
            self.layer = layer

        def sublayers(self):
            return [self.layer]

        def get_config(self):
            return {**super().get_config(), "layer": serialize_layer(self.layer)}

    try:
        entry = _through_json(serialize_layer(Wrap(Wrap(layers.Dense(4, activation="tanh")))))
        rebuilt = deserialize_layer(entry)
        assert type(rebuilt) is Wrap and type(rebuilt.layer) is Wrap and type(rebuilt.layer.layer) is layers.Dense
        assert rebuilt.layer.layer.get_config()["activation"] == "tanh"
        deep = {"class_name": "Dense", "config": {"units": 1}}
        for _ in range(MAX_DEPTH + 8):
            deep = {"class_name": "Wrap", "config": {"layer": deep}}
        with pytest.raises(ValueError, match=f"nested deeper than {MAX_DEPTH} levels"):
            deserialize_layer(deep)
    finally:
        LAYERS.pop("Wrap")


def test_a_layer_given_instead_of_a_config_is_returned_as_it_is():
    layer = layers.Dense(2)
    assert deserialize_layer(layer) is layer


@pytest.mark.parametrize("entry, message", [
    pytest.param({"config": {}}, r"must be \{'class_name': str, 'config': dict\}, got \{'config': \{\}\}",
                 id="no-class-name"),
    pytest.param("Dense", "must be .*got 'Dense'", id="a-string"),
    pytest.param({"class_name": "Dense", "config": [1]}, "must be", id="config-not-a-dict"),
    pytest.param({"class_name": "os.system", "config": {}}, r"unknown layer class 'os.system'; known layers: .*Dense",
                 id="unknown-class"),
    pytest.param({"class_name": "Dense", "config": {"units": 3, "evil": 1}}, r"cannot rebuild layer Dense .*evil",
                 id="unknown-argument"),
])
def test_bad_entries_are_refused_with_a_message(entry, message):
    with pytest.raises(ValueError, match=message):
        deserialize_layer(entry)


def test_short_repr_cuts_long_values_for_messages():
    assert short_repr([1, 2]) == "[1, 2]"
    text = short_repr(list(range(1000)), limit=20)
    assert text == repr(list(range(1000)))[:20] + "..." and len(text) == 23


def test_rebuilt_layers_compute_what_the_original_computed():
    x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype(np.float32)
    layer = layers.Bidirectional(layers.GRU(4, return_sequences=True))
    expected = layer(x).numpy()
    rebuilt = deserialize_layer(_through_json(serialize_layer(layer)))
    rebuilt(x)  # builds the weights
    rebuilt.set_weights(layer.get_weights())
    np.testing.assert_allclose(rebuilt(x).numpy(), expected, rtol=1e-6)


# --- the bounds load_model holds a file to (issue 14) --------------------------------------------
BUILT_ON = [
    (lambda: layers.Dense(3), (None, 4)),
    (lambda: layers.Dense(3), (None, 5, 4)),
    (lambda: layers.Conv1D(4, 3, strides=2, padding="same"), (None, 10, 3)),
    (lambda: layers.Conv1D(4, 3), (None, 3, 2)),
    (lambda: layers.Conv2D(2, (3, 1), dilation_rate=(2, 1)), (None, 8, 8, 2)),
    (lambda: layers.LSTM(5, return_sequences=True), (None, 6, 3)),
    (lambda: layers.GRU(2), (None, 6, 3)),
    (lambda: layers.SimpleRNN(4), (None, 1, 3)),
    (lambda: layers.Bidirectional(layers.LSTM(3, return_sequences=True), merge_mode="sum"), (None, 6, 2)),
    (lambda: layers.Bidirectional(layers.GRU(3)), (None, 6, 2)),
    (lambda: layers.TimeDistributed(layers.Dense(2)), (None, 6, 3)),
    (lambda: layers.ZeroPadding1D((2, 5)), (None, 4, 3)),
    (lambda: layers.ZeroPadding2D(((1, 0), (3, 2))), (None, 4, 5, 2)),
    (lambda: layers.ZeroPadding2D(0), (None, 4, 5, 2)),
    (lambda: layers.BatchNormalization(), (None, 4)),
    (lambda: layers.MaxPooling1D(2), (None, 6, 3)),
    (lambda: layers.UpSampling1D(3), (None, 4, 2)),
    (lambda: layers.UpSampling2D((2, 3), interpolation="bilinear"), (None, 4, 5, 2)),
    (lambda: layers.Conv2DTranspose(3, 3, strides=2, padding="same"), (None, 4, 5, 2)),
    (lambda: layers.Conv2DTranspose(2, (2, 3), strides=(3, 2), output_padding=(2, 1)), (None, 1, 3, 2)),
    (lambda: layers.Conv1DTranspose(2, 4, strides=2, padding="same", output_padding=1), (None, 5, 3)),
    (lambda: layers.Conv1DTranspose(2, 2, strides=5), (None, 1, 3)),
]


@pytest.mark.parametrize("make, input_shape", BUILT_ON)
def test_the_lower_bounds_never_exceed_what_a_layer_really_builds(make, input_shape):
    # the budget refuses a file only on these bounds, so a real model must never pass them
    layer = make()
    config = layer.get_config()
    output = layer.compute_output_shape(input_shape)
    output = output[0] if isinstance(output, list) else output
    assert weight_lower_bound(config, input_shape) <= layer.count_params()
    assert output_lower_bound(config, input_shape) <= int(np.prod([1 if n is None else n for n in output]))
    if isinstance(layer, (layers.Dense, layers.ZeroPadding1D, layers.ZeroPadding2D, layers.UpSampling1D,
                          layers.UpSampling2D, layers.Conv1DTranspose, layers.Conv2DTranspose)):  # exact for these
        assert output_lower_bound(config, input_shape) == int(np.prod([1 if n is None else n for n in output]))


def test_check_config_numbers_names_the_key_path():
    check_config_numbers({"layers": [{"config": {"units": MAX_CONFIG_INT, "rate": 1e30}}]})
    with pytest.raises(ValueError, match=r"model.layers\[1\].config.padding\[0\] is 16777217, beyond the bound"):
        check_config_numbers({"layers": [{}, {"config": {"padding": [MAX_CONFIG_INT + 1, 0]}}]}, "model")
    deep = [-(10 ** 30)]
    for _ in range(5000):  # walked without recursion
        deep = [deep]
    with pytest.raises(ValueError, match="beyond the bound"):
        check_config_numbers(deep)


def test_size_budget_is_active_only_inside_its_block():
    assert current_size_budget() is None
    with size_budget(100) as outer:
        assert current_size_budget() is outer and outer.weight_elements == 100
        with size_budget(5) as inner:
            assert current_size_budget() is inner
        assert current_size_budget() is outer
    assert current_size_budget() is None


def test_a_model_built_inside_a_budget_is_refused_before_the_layer_that_passes_it():
    built = []

    class Recorded(layers.Dense):
        def build(self, input_shape):
            built.append(self.name)
            super().build(input_shape)

    try:
        with size_budget(40), pytest.raises(ValueError, match=r"layer 'big' \(Recorded, units=2000000\) would "
                                                              r"create at least 10,000,000 weight values"):
            dl.Sequential([layers.Input((4,)), Recorded(5, name="small"), Recorded(2_000_000, name="big")])
        assert built == ["small"]
        dl.Sequential([layers.Input((4,)), Recorded(2_000_000, name="unlimited")])  # no budget, no limit
    finally:
        LAYERS.pop("Recorded")
