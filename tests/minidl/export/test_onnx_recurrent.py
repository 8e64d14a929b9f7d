"""minidl/export/onnx_recurrent.py: SimpleRNN, LSTM, GRU and Bidirectional in ONNX Runtime give
minidl's outputs at every step of a right-padded batch, padded steps included."""
from __future__ import annotations

import numpy as np
import pytest

import minidl as dl
from minidl import layers
from minidl.export import ExportError
from minidl.export.onnx_recurrent import onnx_weights
from tests.minidl.export.onnx_check import assert_same_as_minidl, padded_batch

CELLS = ["SimpleRNN", "LSTM", "GRU"]
LENGTHS = [7, 3, 1, 5]   # right-padded rows, one of a single step


def masked_model(*stack, features: int = 4):
    return dl.Sequential([layers.Input((None, features)), layers.Masking(0.0), *stack])


def randomise(model, rng) -> None:
    """Biases and kernels away from their initial values (LSTM's forget bias 1, GRU's zeros), so
    each gate block lands in its own place or the test fails."""
    for layer in model.layers:
        for weight in layer.weights:
            weight.data = rng.normal(scale=0.6, size=weight.shape).astype(np.float32)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("masked", [True, False])
def test_one_direction(rng, cell, return_sequences, go_backwards, masked):
    layer = getattr(layers, cell)(5, return_sequences=return_sequences, go_backwards=go_backwards)
    model = masked_model(layer) if masked else dl.Sequential([layers.Input((None, 4)), layer])
    randomise(model, rng)
    got = assert_same_as_minidl(model, padded_batch(rng, LENGTHS, 4))
    if masked and return_sequences and not go_backwards:
        # padded steps repeat the last valid output (ONNX Runtime alone would write zeros there)
        np.testing.assert_array_equal(got["output"][1, 3:], np.repeat(got["output"][1, 2:3], 4, axis=0))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_zero_output_for_mask(rng, cell, return_sequences, go_backwards):
    model = masked_model(getattr(layers, cell)(3, return_sequences=return_sequences, go_backwards=go_backwards,
                                               zero_output_for_mask=True))
    randomise(model, rng)
    assert_same_as_minidl(model, padded_batch(rng, LENGTHS, 4))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional(rng, cell, merge_mode, return_sequences):
    model = masked_model(layers.Bidirectional(getattr(layers, cell)(3, return_sequences=return_sequences),
                                              merge_mode=merge_mode))
    randomise(model, rng)
    assert_same_as_minidl(model, padded_batch(rng, LENGTHS, 4))


def test_stacked_layers_pass_the_mask_on(rng):
    model = masked_model(layers.LSTM(4, return_sequences=True), layers.Dropout(0.3),
                         layers.GRU(3, return_sequences=True, go_backwards=True),
                         layers.Bidirectional(layers.SimpleRNN(2, return_sequences=True)),
                         layers.TimeDistributed(layers.Dense(2)))
    randomise(model, rng)
    got = assert_same_as_minidl(model, padded_batch(rng, LENGTHS, 4))
    assert got["output_mask"].sum(axis=1).tolist() == LENGTHS


def test_a_row_of_padding_only(rng):
    model = masked_model(layers.Bidirectional(layers.LSTM(3, return_sequences=True)), layers.GRU(2))
    randomise(model, rng)
    assert_same_as_minidl(model, padded_batch(rng, [4, 0, 2], 4))


def test_lstm_gate_blocks_are_reordered_to_iofc(rng):
    layer = layers.LSTM(2)
    dl.Sequential([layers.Input((3, 4)), layer])
    randomise(dl.Sequential([layer]), rng)
    W, R, B = onnx_weights(layer)
    kernel, recurrent_kernel, bias = layer.get_weights()
    keras_blocks = {gate: slice(2 * k, 2 * k + 2) for k, gate in enumerate("ifco")}
    for k, gate in enumerate("iofc"):   # ONNX's block k
        np.testing.assert_array_equal(W[0, 2 * k:2 * k + 2], kernel[:, keras_blocks[gate]].T)
        np.testing.assert_array_equal(R[0, 2 * k:2 * k + 2], recurrent_kernel[:, keras_blocks[gate]].T)
        np.testing.assert_array_equal(B[0, 2 * k:2 * k + 2], bias[keras_blocks[gate]])
    assert not B[0, 8:].any()   # the recurrent bias Rb: Keras has one bias


def test_gru_bias_rows_are_wb_then_rb(rng):
    layer = layers.GRU(2)
    dl.Sequential([layers.Input((3, 4)), layer])
    randomise(dl.Sequential([layer]), rng)
    _, _, B = onnx_weights(layer)
    np.testing.assert_array_equal(B[0], layer.get_weights()[2].reshape(-1))


def test_a_left_padded_mask_is_refused():
    model = masked_model(layers.ZeroPadding1D((2, 0)), layers.LSTM(3, name="after_left_pad"))
    with pytest.raises(ExportError, match=r"LSTM 'after_left_pad'.*right-padded"):
        dl.export.onnx(model)


def test_a_right_pad_keeps_the_mask_a_prefix(rng):
    model = masked_model(layers.ZeroPadding1D((0, 2)), layers.GRU(3, return_sequences=True))
    randomise(model, rng)
    assert_same_as_minidl(model, padded_batch(rng, [3, 5], 4))


def test_an_activation_onnx_lacks_is_refused():
    model = masked_model(layers.SimpleRNN(2, activation="elu", name="elu_rnn"))
    with pytest.raises(ExportError, match=r"SimpleRNN 'elu_rnn': activation 'elu'"):
        dl.export.onnx(model)


def test_return_state_and_merge_mode_none_are_refused():
    # a layer of several outputs cannot sit in a Sequential at all now (as in Keras), so the
    # model is refused before the exporter sees it; the exporter's own check stays for the rest
    with pytest.raises((ExportError, ValueError), match=r"return_state|returns 2 outputs"):
        dl.export.onnx(masked_model(layers.GRU(2, return_state=True), layers.Dense(1)))
    with pytest.raises((ExportError, ValueError), match=r"merge_mode=None|returns 2 outputs"):
        dl.export.onnx(dl.Sequential([layers.Input((None, 4)),
                                      layers.Bidirectional(layers.GRU(2), merge_mode=None)]))
