"""minidl/export/keras_import.py: Keras (model or .keras file) -> minidl, outputs within 1e-5."""
from __future__ import annotations

import numpy as np
import pytest

import minidl as dl
from minidl.export import ExportError

keras = pytest.importorskip("keras", reason="the Keras round trips need keras (reference extra)")

TOLERANCE = 1e-5


def padded(rng, lengths, features):
    x = rng.normal(size=(len(lengths), max(lengths), features)).astype(np.float32)
    for row, length in enumerate(lengths):
        x[row, length:] = 0
    return x


def randomised(model, rng):
    """Weights away from their initial values (biases zero, BN statistics 0 and 1)."""
    for layer in model.layers:
        layer.set_weights([rng.uniform(0.5, 1.5, w.shape) if "variance" in w.path else
                           rng.normal(scale=0.5, size=w.shape) for w in layer.weights])
    return model


def test_recurrent_model_from_a_keras_file_on_a_padded_batch(rng, tmp_path):
    model = randomised(keras.Sequential([
        keras.Input((None, 5)), keras.layers.Masking(0.0),
        keras.layers.LSTM(6, return_sequences=True),
        keras.layers.Bidirectional(keras.layers.GRU(4, return_sequences=True), merge_mode="concat"),
        keras.layers.SimpleRNN(3, go_backwards=True), keras.layers.Dense(2, activation="softmax")]), rng)
    model.save(tmp_path / "model.keras")
    ours = dl.from_keras(tmp_path / "model.keras")
    x = padded(rng, [9, 4, 6], 5)
    np.testing.assert_allclose(ours.predict(x), model.predict(x, verbose=0), rtol=0, atol=TOLERANCE)


def test_convolutional_model_from_a_live_keras_model(rng):
    model = randomised(keras.Sequential([
        keras.Input((16, 12, 2)), keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.BatchNormalization(), keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(3, (3, 2), dilation_rate=(2, 1), padding="valid"),
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dropout(0.1),
        keras.layers.Dense(5), keras.layers.LayerNormalization(), keras.layers.Activation("tanh")]), rng)
    ours = dl.from_keras(model)
    x = rng.normal(size=(3, 16, 12, 2)).astype(np.float32)
    np.testing.assert_allclose(ours.predict(x), model.predict(x, verbose=0), rtol=0, atol=TOLERANCE)


def test_sequence_layers_from_keras(rng):
    norm = keras.layers.Normalization(axis=-1)
    norm.adapt(rng.normal(loc=2, scale=3, size=(30, 8, 3)).astype(np.float32))
    model = keras.Sequential([keras.Input((8, 3)), norm,
                              keras.layers.Conv1D(4, 3, strides=2, padding="causal"),
                              keras.layers.AveragePooling1D(2, padding="same"),
                              keras.layers.TimeDistributed(keras.layers.Dense(3)), keras.layers.Flatten()])
    ours = dl.from_keras(model)
    x = rng.normal(size=(2, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(ours.predict(x), model.predict(x, verbose=0), rtol=0, atol=TOLERANCE)


def test_what_minidl_lacks_is_named():
    with pytest.raises(ExportError, match=r"layer 'deconv' \(Conv3DTranspose\) has no minidl counterpart"):
        dl.from_keras(keras.Sequential([keras.Input((5, 5, 5, 3)), keras.layers.Conv3DTranspose(2, 3, name="deconv")]))
    with pytest.raises(ExportError, match=r"'lstm_c' \(LSTM\): argument kernel_constraint=.* is not supported"):
        dl.from_keras(keras.Sequential([keras.Input((4, 3)), keras.layers.LSTM(2, kernel_constraint="non_neg",
                                                                               name="lstm_c")]))

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    with pytest.raises(ExportError, match=r"imports keras.Sequential and functional .* got Net"):
        dl.from_keras(Net())


# --- functional models ------------------------------------------------------------------------------
def test_branching_model_of_two_inputs_and_two_outputs_from_a_keras_file(rng, tmp_path):
    frames, speaker = keras.Input((None, 4), name="frames"), keras.Input((3,), name="speaker")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.LSTM(5, return_sequences=True)(
        keras.layers.Masking(0.0)(frames)))
    joined = keras.layers.Concatenate()([pooled, keras.layers.Dense(2, activation="tanh")(speaker)])
    model = randomised(keras.Model([frames, speaker], [keras.layers.Dense(3, activation="softmax", name="digit")(joined),
                                                       keras.layers.Dense(1, name="loudness")(joined)]), rng)
    model.save(tmp_path / "model.keras")
    ours = dl.from_keras(tmp_path / "model.keras")
    assert type(ours) is dl.Model and ours.input_names == ["frames", "speaker"]
    assert ours.output_names == ["digit", "loudness"]
    x = [padded(rng, [6, 2, 4], 4), rng.normal(size=(3, 3)).astype(np.float32)]
    for got, expected in zip(ours.predict(x), model.predict(x, verbose=0)):
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)


def test_shared_layer_called_on_a_later_layer_residual_add_and_permute(rng):
    a = keras.Input((6, 4), name="a")
    shared = keras.layers.Dense(4, name="shared")
    first = shared(a)
    later = keras.layers.Dense(4, name="later")(keras.layers.Permute((1, 2))(first))
    second = shared(later)          # the shared layer's second call needs a layer listed after it
    residual = keras.layers.Add()([first, second])
    y = keras.layers.Permute((2, 1))(keras.layers.Subtract()([residual, keras.layers.Average()([first, later])]))
    model = randomised(keras.Model(a, y), rng)
    ours = dl.from_keras(model)
    assert ours.single_output and len([layer for layer in ours.layers if layer.name == "shared"]) == 1
    x = rng.normal(size=(3, 6, 4)).astype(np.float32)
    np.testing.assert_allclose(ours.predict(x), model.predict(x, verbose=0), rtol=0, atol=TOLERANCE)


def test_round_trip_of_a_minidl_functional_model(rng, tmp_path):
    x = dl.layers.Input((5,), name="x")
    h = dl.layers.Dense(4, activation="relu")(x)
    model = dl.Model(x, [dl.layers.Maximum()([h, dl.layers.Dense(4)(x)]), dl.layers.Dot(1, normalize=True)([h, h])])
    dl.export.keras(model).save(tmp_path / "model.keras")
    back = dl.from_keras(tmp_path / "model.keras")
    batch = rng.normal(size=(3, 5)).astype(np.float32)
    for got, expected in zip(back.predict(batch), model.predict(batch)):
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)


def test_a_keras_op_between_layers_is_refused():
    x = keras.Input((3,))
    h = keras.layers.Dense(3)(keras.ops.exp(x))
    with pytest.raises(ExportError, match=r"is called on the result of the op 'exp' \(Exp\); minidl builds models "
                                          r"of layers only"):
        dl.from_keras(keras.Model(x, h))
