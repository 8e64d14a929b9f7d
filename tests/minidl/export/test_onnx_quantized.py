"""dl.export.onnx of a model dl.quantize made: int8 kernels behind DequantizeLinear, minidl's outputs."""
from __future__ import annotations

import numpy as np

import minidl as dl
from minidl import layers
from tests.minidl.export.onnx_check import assert_graph_same_as_minidl, onnx


def test_a_quantised_functional_model_keeps_each_kernel_int8_once_and_matches_minidl(rng, tmp_path):
    a, b = layers.Input((None, 3), name="left"), layers.Input((None, 3), name="right")
    shared = layers.Dense(4, name="shared")                      # called twice: one kernel
    joined = layers.Concatenate()([shared(a), shared(b)])
    digit = layers.Dense(3, activation="softmax", name="digit")(layers.GRU(6, name="gru")(joined))
    level = layers.Dense(1, name="level")(layers.GlobalAveragePooling1D()(shared(b)))
    model = dl.Model([a, b], [digit, level])
    model.set_weights([rng.normal(scale=0.5, size=w.shape) for w in model.get_weights()])
    dl.quantize.save(dl.quantize(model), tmp_path / "q.npz")
    quantized = dl.quantize.load(tmp_path / "q.npz")             # what a device would be given
    proto = dl.export.onnx(quantized)
    int8 = {t.name for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8
            and "zero_point" not in t.name}
    assert len(int8) == 5   # shared, the GRU's W and R, digit, level: the shared kernel stored once
    dequantized = [node for node in proto.graph.node if node.op_type == "DequantizeLinear"]
    assert {node.input[0] for node in dequantized} == int8
    assert not [t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.FLOAT
                and len(t.dims) == 2 and min(t.dims) > 1]   # no float32 kernel left beside them
    batches = [rng.normal(size=(3, 7, 3)).astype(np.float32) for _ in range(2)]
    # ONNX Runtime's basic optimisations fold q · s: minidl's very weights, within 1e-5
    assert_graph_same_as_minidl(quantized, batches, basic_optimizations=True)
