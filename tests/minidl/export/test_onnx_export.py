"""minidl/export/onnx_export.py: whole models (the digit CNN, LSTM, CRNN and the CTC model), the
graph's inputs and outputs, opsets, and what is refused."""
from __future__ import annotations

import numpy as np
import pytest

import minidl as dl
from minidl import layers
from minidl.apps import ctc_digits, digits
from minidl.export import ExportError, check_right_padded
from tests.minidl.export.onnx_check import (TOLERANCE, assert_graph_same_as_minidl, assert_same_as_minidl,
                                            minidl_outputs, onnx, onnx_outputs, ort, padded_batch)

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
    with pytest.raises(ExportError, match=r"exports Sequential and functional models; got Dense"):
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


# --- functional models ------------------------------------------------------------------------------
def test_branching_model_of_two_inputs_and_two_outputs(rng):
    frames, speaker = layers.Input((None, 4), name="frames"), layers.Input((3,), name="speaker")
    pooled = layers.GlobalAveragePooling1D()(layers.LSTM(5, return_sequences=True)(layers.Masking(0.0)(frames)))
    joined = layers.Concatenate()([pooled, layers.Dense(2, activation="tanh")(speaker)])
    model = dl.Model([frames, speaker], [layers.Dense(3, activation="softmax", name="digit")(joined),
                                         layers.Dense(1, name="loudness")(joined)])
    batches = [padded_batch(rng, [6, 2, 4], 4), rng.normal(size=(3, 3)).astype(np.float32)]
    got = assert_graph_same_as_minidl(model, batches)
    assert sorted(got) == ["digit", "loudness"]
    session = ort.InferenceSession(dl.export.onnx(model).SerializeToString(), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["frames", "speaker"]


def test_residual_add_keeps_the_mask_for_the_next_recurrent_layer(rng):
    x = layers.Input((None, 6))
    masked = layers.Masking(0.0)(x)
    h = layers.Dense(6, activation="relu")(layers.GRU(6, return_sequences=True)(masked))
    y = layers.LSTM(3, return_sequences=True)(layers.LayerNormalization()(layers.Add()([masked, h])))
    model = dl.Model(x, y)
    got = assert_graph_same_as_minidl(model, [padded_batch(rng, [8, 3, 5], 6)])
    assert got["output_mask"].sum(axis=1).tolist() == [8, 3, 5]


def test_a_shared_layer_is_stored_once_and_computed_twice(rng):
    a, b = layers.Input((5,), name="a"), layers.Input((5,), name="b")
    shared = layers.Dense(4, activation="tanh", name="shared")
    ha, hb = shared(a), shared(b)
    twice = shared(layers.Dense(5)(ha))   # a third call, on a layer after the first
    model = dl.Model([a, b], [layers.Subtract(name="difference")([ha, hb]), layers.Average(name="mean")([ha, twice])])
    assert_graph_same_as_minidl(model, [rng.normal(size=(3, 5)).astype(np.float32) for _ in range(2)])
    proto = dl.export.onnx(model)
    kernels = [t for t in proto.graph.initializer if tuple(t.dims) == (5, 4)]
    assert len(kernels) == 1
    assert sum(node.op_type == "MatMul" for node in proto.graph.node) == 3 + 1


def test_a_model_inside_a_graph_names_itself():
    x = layers.Input((3,))
    inner = dl.Model(inner_x := layers.Input((3,)), layers.Dense(2)(inner_x), name="inner_model")
    with pytest.raises(ExportError, match=r"layer 'inner_model' \(Model\) is not supported"):
        dl.export.onnx(dl.Model(x, inner(x)))


def test_functional_refusals():
    class Net(dl.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    net = Net()
    net(np.zeros((1, 3), np.float32))
    with pytest.raises(ExportError, match=r"subclassed: its call is Python code"):
        dl.export.onnx(net)
    x = layers.Input((4, 3))
    with pytest.raises(ExportError, match=r"'stateful' \(LSTM\) returns 3 tensors"):
        dl.export.onnx(dl.Model(x, layers.LSTM(2, return_state=True, name="stateful")(x)[0]))
    with pytest.raises(ExportError, match=r"'noisy' \(Dropout\) is called with \{'training': True\}"):
        dl.export.onnx(dl.Model(x, layers.Dropout(0.5, name="noisy")(x, training=True)))
    a = layers.Input((2,), name="output_mask")
    with pytest.raises(ExportError, match=r"would name two of its inputs and outputs output_mask"):
        dl.export.onnx(dl.Model([a, layers.Input((2,), name="b")], [layers.Dense(1, name="output")(a),
                                                                    layers.Dense(1)(a)]))
