"""minidl/export/keras_export.py: minidl -> keras.Model -> .keras file -> Keras load, outputs within 1e-5."""
from __future__ import annotations

import numpy as np
import pytest

import minidl as dl
from minidl import layers
from minidl.apps import ctc_digits, digits
from minidl.export import ExportError

keras = pytest.importorskip("keras", reason="the Keras round trips need keras (reference extra)")

TOLERANCE = 1e-5
N_FEATURES = 13


def padded(rng, lengths, features=N_FEATURES):
    x = rng.normal(size=(len(lengths), max(lengths), features)).astype(np.float32)
    for row, length in enumerate(lengths):
        x[row, length:] = 0
    return x


def through_a_keras_file(model, tmp_path):
    keras_model = dl.export.keras(model)
    assert isinstance(keras_model, keras.Model)
    keras_model.save(tmp_path / "model.keras")
    return keras.saving.load_model(tmp_path / "model.keras")


def adapt(model, rng):
    for layer in model.layers:
        if isinstance(layer, layers.Normalization):
            layer.adapt(rng.normal(loc=-3, scale=2, size=(10, 20, N_FEATURES)))
    return model


def test_digit_lstm_on_a_padded_batch(rng, tmp_path):
    model = adapt(digits.build_lstm(N_FEATURES, units=8), rng)
    loaded = through_a_keras_file(model, tmp_path)
    x = padded(rng, [20, 7, 13]) * 3
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x), rtol=0, atol=TOLERANCE)


def test_digit_cnn(rng, tmp_path):
    model = adapt(digits.build_cnn(20, N_FEATURES), rng)
    loaded = through_a_keras_file(model, tmp_path)
    x = rng.normal(size=(2, 20, N_FEATURES)).astype(np.float32) * 3
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x), rtol=0, atol=TOLERANCE)


def test_digit_crnn_agrees_on_unpadded_batches(rng, tmp_path):
    # Keras drops the mask at Conv1D (minidl keeps it), so only batches without padding agree
    model = adapt(digits.build_crnn(N_FEATURES, filters=8, units=8), rng)
    loaded = through_a_keras_file(model, tmp_path)
    x = rng.normal(size=(3, 17, N_FEATURES)).astype(np.float32) * 3
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x), rtol=0, atol=TOLERANCE)


def test_ctc_model(rng, tmp_path):
    model = ctc_digits.build_model(N_FEATURES, ctc_digits.ModelSettings(filters=8, units=8, cell="lstm"))
    loaded = through_a_keras_file(model, tmp_path)
    x = rng.normal(size=(2, 25, N_FEATURES)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x), rtol=0, atol=TOLERANCE)


def test_many_layers_and_options(rng, tmp_path):
    bn = layers.BatchNormalization()
    model = dl.Sequential([
        layers.Input((12, 4)), layers.Masking(0.0),
        layers.Bidirectional(layers.GRU(5, return_sequences=True), merge_mode="sum"),
        layers.LayerNormalization(), layers.SimpleRNN(4, return_sequences=True, go_backwards=True),
        layers.TimeDistributed(layers.Dense(6, activation="tanh", kernel_regularizer="l2")),
        bn, layers.Dropout(0.2), layers.Reshape((12, 6, 1)),
        layers.Conv2D(3, (3, 2), strides=(2, 1), padding="same", activation="relu"),
        layers.AveragePooling2D((2, 2), padding="same"), layers.Flatten(), layers.Dense(3, activation="softmax")])
    bn.set_weights([rng.uniform(0.5, 2, 6), rng.normal(size=6), rng.normal(size=6), rng.uniform(0.1, 1, 6)])
    loaded = through_a_keras_file(model, tmp_path)
    x = padded(rng, [12, 5, 9], 4)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x), rtol=0, atol=TOLERANCE)
    assert loaded.layers[4].layer.kernel_regularizer is not None   # the L2 penalty went along


def test_an_unbuilt_model_is_refused():
    with pytest.raises(ExportError, match=r"not built"):
        dl.export.keras(dl.Sequential([layers.Dense(2)]))


# --- functional models ------------------------------------------------------------------------------
def test_branching_model_of_two_inputs_and_two_outputs(rng, tmp_path):
    frames, speaker = layers.Input((None, 4), name="frames"), layers.Input((3,), name="speaker")
    pooled = layers.GlobalAveragePooling1D()(layers.LSTM(5, return_sequences=True)(layers.Masking(0.0)(frames)))
    joined = layers.Concatenate()([pooled, layers.Dense(2, activation="tanh")(speaker)])
    model = dl.Model([frames, speaker], [layers.Dense(3, activation="softmax", name="digit")(joined),
                                         layers.Dense(1, name="loudness")(joined)])
    loaded = through_a_keras_file(model, tmp_path)
    assert [x.name for x in loaded.inputs] == ["frames", "speaker"] and loaded.output_names == ["digit", "loudness"]
    x = [padded(rng, [6, 2, 4], 4), rng.normal(size=(3, 3)).astype(np.float32)]
    for got, expected in zip(loaded.predict(x, verbose=0), model.predict(x)):
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)


def test_residual_add_and_a_shared_layer(rng, tmp_path):
    a, b = layers.Input((None, 6), name="a"), layers.Input((None, 6), name="b")
    shared = layers.Dense(6, activation="relu", name="shared")
    masked = layers.Masking(0.0)(a)
    residual = layers.Add()([masked, shared(masked)])
    # Subtract, not Multiply: Keras 3's Multiply, Maximum and Minimum take a masked entry from the
    # other input, minidl's compute on the values as they are (keras_export.py's docstring)
    y = layers.GRU(3)(layers.Subtract()([residual, shared(b)]))
    model = dl.Model([a, b], y)
    loaded = through_a_keras_file(model, tmp_path)
    assert len(loaded.get_layer("shared")._inbound_nodes) == 2   # one Keras layer, called twice
    x = [padded(rng, [7, 3, 5], 6), padded(rng, [7, 7, 7], 6)]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x), rtol=0, atol=TOLERANCE)


def test_permute_and_a_model_inside_a_model(rng, tmp_path):
    inner_x = layers.Input((4, 6))
    inner = dl.Model(inner_x, layers.Permute((2, 1))(layers.Dense(5)(inner_x)), name="inner")
    x = layers.Input((6, 4))
    model = dl.Model(x, layers.Flatten()(inner(layers.Permute((2, 1))(x))))
    loaded = through_a_keras_file(model, tmp_path)
    x_batch = rng.normal(size=(2, 6, 4)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(x_batch, verbose=0), model.predict(x_batch), rtol=0, atol=TOLERANCE)


def test_a_subclassed_model_is_refused():
    class Net(dl.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    net = Net()
    net(np.zeros((1, 3), np.float32))
    with pytest.raises(ExportError, match=r"subclassed: its call is Python code"):
        dl.export.keras(net)
