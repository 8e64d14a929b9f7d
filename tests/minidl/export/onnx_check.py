"""What the ONNX export tests share: run a model in minidl and in ONNX Runtime, compare."""
from __future__ import annotations

import numpy as np
import pytest

import minidl as dl
from minidl.tensor import Tensor

onnx = pytest.importorskip("onnx", reason="the ONNX export tests need the onnx package (test extra)")
ort = pytest.importorskip("onnxruntime", reason="the ONNX export tests need onnxruntime (test extra)")

TOLERANCE = 1e-5   # the bound, float32


def minidl_outputs(model, x: np.ndarray, mask=None) -> tuple[np.ndarray, np.ndarray | None]:
    """minidl's output and output mask for one batch (inference)."""
    with dl.no_grad():
        y = model(Tensor(x), training=False, mask=mask)
    return y.numpy(), (None if y.mask is None else np.asarray(y.mask))


def onnx_outputs(model, x: np.ndarray, mask=None, path=None, basic_optimizations: bool = False,
                 **options) -> dict:
    """ONNX Runtime's outputs, by name, of ``model`` exported (and checked) with ``options``;
    ``basic_optimizations`` keeps ONNX Runtime from its int8 kernels for DequantizeLinear ->
    MatMul/Conv (which quantise the activations too), folding the dequantised weights instead."""
    proto = dl.export.onnx(model, path, **options)
    onnx.checker.check_model(proto, full_check=True)
    session_options = ort.SessionOptions()
    if basic_optimizations:
        session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    session = ort.InferenceSession(proto.SerializeToString(), session_options, providers=["CPUExecutionProvider"])
    # x: the batch of a model of one input, or a dict of batches by input name
    feeds = {name: np.asarray(v, dtype=np.float32) for name, v in (x.items() if isinstance(x, dict)
                                                                    else [("input", x)])}
    if mask is not None:
        feeds["mask"] = np.asarray(mask, dtype=bool)
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))


def assert_same_as_minidl(model, x: np.ndarray, mask=None, **options) -> dict:
    """ONNX Runtime's output equals minidl's within 1e-5 at every step, masks included."""
    expected, expected_mask = minidl_outputs(model, x, mask)
    got = onnx_outputs(model, x, mask, **(dict(options, mask_input=True) if mask is not None else options))
    assert got["output"].shape == expected.shape
    np.testing.assert_allclose(got["output"], expected, rtol=0, atol=TOLERANCE)
    assert ("output_mask" in got) == (expected_mask is not None)
    if expected_mask is not None:
        np.testing.assert_array_equal(got["output_mask"], expected_mask)
    return got


def padded_batch(rng, lengths, features: int, steps: int | None = None) -> np.ndarray:
    """(batch, steps, features) float32 normals, zero after each row's length (right padding)."""
    steps = steps or max(lengths)
    x = rng.normal(size=(len(lengths), steps, features)).astype(np.float32)
    for row, length in enumerate(lengths):
        x[row, length:] = 0
    return x


def assert_graph_same_as_minidl(model, batches: list, **options) -> dict:
    """For a model of any inputs and outputs: ONNX Runtime's outputs (named "output" for a model
    of one, else by ``model.output_names``) and their masks equal minidl's within 1e-5."""
    with dl.no_grad():
        expected = model([Tensor(b) for b in batches] if len(batches) > 1 else Tensor(batches[0]), training=False)
    expected = list(expected) if isinstance(expected, (list, tuple)) else [expected]
    feeds = dict(zip(model.input_names, batches)) if len(batches) > 1 else batches[0]
    got = onnx_outputs(model, feeds, **options)
    names = model.output_names if len(expected) > 1 else ["output"]
    assert sorted(got) == sorted(names + [f"{n}_mask" for n, y in zip(names, expected) if y.mask is not None])
    for name, y in zip(names, expected):
        assert got[name].shape == y.shape, name
        np.testing.assert_allclose(got[name], y.numpy(), rtol=0, atol=TOLERANCE, err_msg=name)
        if y.mask is not None:
            np.testing.assert_array_equal(got[f"{name}_mask"], np.asarray(y.mask), err_msg=name)
    return got
