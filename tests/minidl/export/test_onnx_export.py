"""minidl/export/onnx_export.py: whole models (the digit CNN, LSTM, CRNN and the CTC model), the
graph's inputs and outputs, opsets, and what is refused."""
from __future__ import annotations

import numpy as np
import pytest

import minidl as dl
from minidl import layers
from minidl.apps import ctc_digits, digits
from minidl.export import ExportError, check_right_padded
from tests.minidl.export.onnx_check import (TOLERANCE, assert_same_as_minidl, minidl_outputs, onnx,
                                            onnx_outputs, ort, padded_batch)

N_FEATURES = 13


def adapted(model, rng):
    """Trained-looking statistics in the feature Normalization, and weights off their initial values."""
    for layer in model.layers:
        if isinstance(layer, layers.Normalization):
            layer.adapt(rng.normal(loc=-4, scale=3, size=(10, 20, N_FEATURES)))
    return model


@pytest.mark.parametrize("kind", ["lstm", "crnn"])
def test_digit_recurrent_models_on_a_padded_batch(rng, kind):
    builder = digits.build_lstm if kind == "lstm" else digits.build_crnn
    model = adapted(builder(N_FEATURES, units=16) if kind == "lstm" else builder(N_FEATURES, filters=8, units=16), rng)
    x = padded_batch(rng, [31, 12, 25, 1], N_FEATURES) * 3
    got = assert_same_as_minidl(model, x)
    if kind == "crnn":
        return   # its 'same' Conv1D sees the padding near each row's end, in minidl as in ONNX
    # the padding changes nothing: each row alone, unpadded, gives the same probabilities
    for row, length in enumerate([31, 12, 25]):
        alone = minidl_outputs(model, x[row:row + 1, :length])[0]
        np.testing.assert_allclose(got["output"][row:row + 1], alone, rtol=0, atol=TOLERANCE)


def test_digit_cnn(rng):
    model = adapted(digits.build_cnn(20, N_FEATURES), rng)
    assert_same_as_minidl(model, rng.normal(size=(3, 20, N_FEATURES)).astype(np.float32) * 3)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_ctc_model_gives_posteriors_and_output_lengths(rng, cell):
    model = ctc_digits.build_model(N_FEATURES, ctc_digits.ModelSettings(filters=8, units=8, cell=cell))
    lengths = [40, 17, 29]
    x = padded_batch(rng, lengths, N_FEATURES)
    mask = np.arange(40)[None, :] < np.array(lengths)[:, None]
    log_probs, expected_lengths = ctc_digits.log_probabilities(model, x, mask)
    got = onnx_outputs(model, x, mask, mask_input=True, final_activation="softmax")
    np.testing.assert_array_equal(got["output_mask"].sum(axis=1), expected_lengths)
    np.testing.assert_allclose(got["output"], np.exp(log_probs.numpy()), rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(got["output"].sum(axis=-1), 1, atol=1e-5)


@pytest.mark.parametrize("opset", [17, 18, 21])
def test_opsets(rng, opset):
    # Reduce* take axes as an attribute at 17 and as an input from 18: Masking and the pooling use them
    model = dl.Sequential([layers.Input((None, 3)), layers.Masking(0.0), layers.GlobalAveragePooling1D(),
                           layers.Dense(2)])
    proto = dl.export.onnx(model, opset=opset)
    assert proto.opset_import[0].version == opset
    assert_same_as_minidl(model, padded_batch(rng, [4, 2], 3), opset=opset)


def test_file_written_loads_and_checks(tmp_path, rng):
    model = dl.Sequential([layers.Input((5,)), layers.Dense(3, activation="softmax")])
    path = tmp_path / "model.onnx"
    dl.export.onnx(model, path)
    onnx.checker.check_model(str(path), full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    x = rng.normal(size=(4, 5)).astype(np.float32)
    np.testing.assert_allclose(session.run(None, {"input": x})[0], model.predict(x), atol=TOLERANCE)


def test_check_right_padded():
    assert check_right_padded([[1, 1, 0], [0, 0, 0], [1, 1, 1]]).tolist() == [2, 0, 3]
    with pytest.raises(ValueError, match=r"row 1 .*padding before a valid step"):
        check_right_padded([[1, 0, 0], [0, 1, 1]])


def test_refusals():
    with pytest.raises(ExportError, match=r"not built"):
        dl.export.onnx(dl.Sequential([layers.Dense(2)]))
    with pytest.raises(ExportError, match=r"opset must be an int from 17"):
        dl.export.onnx(dl.Sequential([layers.Input((3,)), layers.Dense(2)]), opset=13)
    with pytest.raises(ExportError, match=r"exports Sequential models; got Dense"):
        dl.export.onnx(layers.Dense(2))
    with pytest.raises(ExportError, match=r"mask_input=True needs inputs \(batch, steps, \.\.\.\)"):
        dl.export.onnx(dl.Sequential([layers.Input((3,)), layers.Dense(2)]), mask_input=True)


def test_a_layer_without_a_converter_is_named():
    inner = dl.Sequential([layers.Dense(2)], name="inner_stack")   # a nested Sequential has none
    model = dl.Sequential([layers.Input((3,)), inner])
    with pytest.raises(ExportError, match=r"layer 'inner_stack' \(Sequential\) is not supported"):
        dl.export.onnx(model)


def test_a_quantised_model_keeps_int8_kernels_behind_dequantize_linear(rng):
    model = dl.Sequential([layers.Input((None, N_FEATURES)), layers.Masking(0.0),
                           layers.Conv1D(8, 3, padding="same"), layers.Bidirectional(layers.LSTM(6)),
                           layers.Dense(4)])
    quantized = dl.quantize(model)
    proto = dl.export.onnx(quantized)
    int8 = [t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8 and "zero_point" not in t.name]
    assert len(int8) == 1 + 4 + 1   # the conv, each direction's W and R, the dense
    assert sum(node.op_type == "DequantizeLinear" for node in proto.graph.node) == len(int8)
    x = padded_batch(rng, [9, 3, 6], N_FEATURES)
    assert_same_as_minidl(quantized, x, basic_optimizations=True)   # q · s folded: minidl's weights exactly
    # with all optimisations ONNX Runtime runs int8 GEMMs, quantising the activations as well
    expected = minidl_outputs(quantized, x)[0]
    np.testing.assert_allclose(onnx_outputs(quantized, x)["output"], expected, atol=2e-2)
