"""``dl.export.onnx``: a minidl model written as an ONNX graph with its weights.

    dl.export.onnx(model, "model.onnx")                 # opset 17 by default

    import onnxruntime as ort                           # serving needs no minidl
    session = ort.InferenceSession("model.onnx")
    probabilities = session.run(None, {"input": x.astype("float32")})[0]

The graph has one input, ``input`` (float32, the model's input shape with the batch axis, and any
axis the model leaves open, free), and with ``mask_input=True`` a second one, ``mask`` (bool
(batch, steps)), for models that take their mask from the caller rather than from a Masking
layer (the CTC model). Its output is ``output``; when the last layer passes a mask on (a
``return_sequences`` model), ``output_mask`` too, so a caller can read the output lengths.

Variable-length batches must be right-padded: each row's valid steps first, then padding
(``dl.data.pad_sequences(..., padding="post")``). ``check_right_padded`` says whether a mask is.
The layout conversions (gate orders, channels, ε) are in onnx_layers.py and onnx_recurrent.py.
"""
from __future__ import annotations

import json
import os

import numpy as np

from minidl.export.errors import ExportError
from minidl.export.onnx_graph import MAX_OPSET, MIN_OPSET, GraphBuilder, Value, onnx_module
from minidl.export.onnx_layers import CONVERTERS as LAYER_CONVERTERS
from minidl.export.onnx_layers import activation
from minidl.export.onnx_recurrent import CONVERTERS as RECURRENT_CONVERTERS

CONVERTERS = {**LAYER_CONVERTERS, **RECURRENT_CONVERTERS}
DIMENSION_NAMES = ("batch", "steps", "width", "depth")


def check_right_padded(mask) -> np.ndarray:
    """The valid lengths of a (batch, steps) bool mask whose rows are all a run of True then False.

    Raises:
        ValueError: a row with a False step before a True one, naming the row; ONNX's
            ``sequence_lens`` (how the exported graph runs a masked recurrent layer) cannot
            describe it.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"check_right_padded: expected a (batch, steps) mask, got shape {mask.shape}")
    lengths = mask.sum(axis=1)
    prefix = np.arange(mask.shape[1])[None, :] < lengths[:, None]
    bad = np.flatnonzero((prefix != mask).any(axis=1))
    if bad.size:
        raise ValueError(f"check_right_padded: row {int(bad[0])} of the mask has padding before a valid "
                         f"step ({mask[bad[0]].astype(int).tolist()}); the exported graph supports "
                         f"right-padded batches only (pad_sequences(..., padding='post'))")
    return lengths


def _sequential_layers(model) -> list:
    if type(model).__name__ != "Sequential":
        raise ExportError(f"dl.export.onnx: exports Sequential models; got {type(model).__name__} "
                          f"'{getattr(model, 'name', '?')}'")
    if not model.built or model.built_input_shape is None or len(model.output_shapes) != len(model.layers):
        raise ExportError(f"dl.export.onnx: model '{model.name}' is not built; give its first layer an "
                          f"input shape (layers.Input(...)) or call it on data first")
    return model.layers


def _dims(shape: tuple, names: tuple) -> list:
    return [names[i] if n is None and i < len(names) else n for i, n in enumerate(shape)]


def build_graph(model, opset: int = MIN_OPSET, mask_input: bool = False, final_activation: str | None = None,
                metadata: dict | None = None):
    """The ONNX ModelProto of ``model``, checked by ``onnx.checker``; see ``export_onnx``."""
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"dl.export.onnx: opset must be an int from {MIN_OPSET} (LayerNormalization's "
                          f"first) to {MAX_OPSET}, got {opset!r}")
    layers = _sequential_layers(model)
    record = getattr(model, "quantization", None)   # set by dl.quantize and dl.quantize.load
    weights = model.weights
    graph = GraphBuilder(opset, {id(weights[i]): scales for i, scales in record["weights"].items()}
                         if record else None)
    onnx, helper = graph.onnx, graph.helper
    input_shape = tuple(model.built_input_shape)
    inputs = [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, _dims(input_shape, DIMENSION_NAMES))]
    graph.unique("input")
    x = Value("input", input_shape)
    if mask_input:
        if len(input_shape) < 3:
            raise ExportError(f"dl.export.onnx: mask_input=True needs inputs (batch, steps, ...), but "
                              f"model '{model.name}' takes {input_shape}")
        inputs.append(helper.make_tensor_value_info("mask", onnx.TensorProto.BOOL, ["batch", "steps"]))
        graph.unique("mask")
        x = x.with_(mask="mask")
    for layer, out_shape in zip(layers, model.output_shapes):
        kind = type(layer).__name__
        if kind not in CONVERTERS:
            raise ExportError(f"dl.export.onnx: layer '{layer.name}' ({kind}) is not supported by the ONNX "
                              f"exporter; supported: {', '.join(sorted(CONVERTERS))}")
        x = CONVERTERS[kind](graph, layer, x, tuple(out_shape))
    y = x.name
    if final_activation is not None:
        y = activation(graph, final_activation, y, "final_activation", "dl.export.onnx final_activation")
    graph.nodes.append(helper.make_node("Identity", [y], ["output"], name="output/Identity"))
    output_dims = [n if n is not None else (None if i else "batch") for i, n in enumerate(x.shape)]
    outputs = [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, output_dims)]
    if x.mask is not None:
        graph.nodes.append(helper.make_node("Identity", [x.mask], ["output_mask"], name="output_mask/Identity"))
        outputs.append(helper.make_tensor_value_info("output_mask", onnx.TensorProto.BOOL, ["batch", None]))
    proto = helper.make_model(helper.make_graph(graph.nodes, model.name, inputs, outputs, graph.initializers),
                              opset_imports=[helper.make_opsetid("", opset)], producer_name="minidl",
                              doc_string="Exported by minidl (dl.export.onnx). Masked batches must be "
                                         "right-padded.")
    if metadata is not None:  # e.g. the feature settings a recogniser needs, readable without minidl
        helper.set_model_props(proto, {"minidl": json.dumps(metadata)})
    # ONNX Runtime reads files by IR version; pin the one that goes with the opset, not the newest
    proto.ir_version = min(proto.ir_version, 8 if opset <= 18 else 9)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model, path: str | os.PathLike | None = None, opset: int = MIN_OPSET, mask_input: bool = False,
                final_activation: str | None = None, metadata: dict | None = None):
    """Write ``model`` as an ONNX file (and return the ModelProto).

    Args:
        model: a built Sequential of the layers in ``CONVERTERS`` (anything else raises an
            ExportError naming the layer and the reason). A model ``dl.quantize`` made keeps
            its kernels int8 in the file, each behind a DequantizeLinear node.
        path: where to write; None to only return the model.
        opset: ONNX opset, 17 (default) to 21.
        mask_input: add a ``mask`` input (bool (batch, steps)), used as the mask of the first
            layer, for models called with ``mask=`` (the CTC model).
        final_activation: a Keras activation applied to the output, e.g. "softmax" to serve the
            CTC model's per-frame posteriors.
        metadata: a JSON-able dict stored as the model property "minidl" (``session.get_modelmeta()
            .custom_metadata_map["minidl"]`` in ONNX Runtime).
    Returns:
        The onnx.ModelProto, already through ``onnx.checker.check_model``.
    Raises:
        ExportError (a ValueError): an unsupported model, layer or option.
        ImportError: the onnx package is not installed.
    """
    proto = build_graph(model, opset, mask_input, final_activation, metadata)
    if path is not None:
        onnx_module().save_model(proto, os.fspath(path))
    return proto
