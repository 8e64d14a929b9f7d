"""``dl.export.onnx``: a minidl model written as an ONNX graph with its weights.

    dl.export.onnx(model, "model.onnx")                 # opset 17 by default

    import onnxruntime as ort                           # serving needs no minidl
    session = ort.InferenceSession("model.onnx")
    probabilities = session.run(None, {"input": x.astype("float32")})[0]

A model of one input and one output (every Sequential) has the input ``input`` (float32, the
model's input shape with the batch axis, and any axis the model leaves open, free), and with
``mask_input=True`` a second one, ``mask`` (bool (batch, steps)), for models that take their mask
from the caller rather than from a Masking layer (the CTC model). Its output is ``output``; when
the last layer passes a mask on (a ``return_sequences`` model), ``output_mask`` too, so a caller
can read the output lengths.

A functional model (``dl.Model(inputs, outputs)``) is the same walk over its graph, one ONNX
value per edge, merge layers included (onnx_merge.py). With several inputs they are named as
their Input layers are, and with several outputs as Keras names them (``model.output_names``),
each mask beside its output as ``<name>_mask``; ``mask=`` goes with the first input, as in
``model(x, mask=...)``. A layer called twice (a shared layer) computes twice from one copy of
its weights.

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
from minidl.export.onnx_merge import CONVERTERS as MERGE_CONVERTERS
from minidl.export.onnx_recurrent import CONVERTERS as RECURRENT_CONVERTERS
from minidl.model import Model
from minidl.sequential import Sequential

CONVERTERS = {**LAYER_CONVERTERS, **RECURRENT_CONVERTERS, **MERGE_CONVERTERS}
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


def _graph_of(model):
    """The Graph of a built Sequential or functional model, or an ExportError saying why not."""
    if not isinstance(model, Model):
        raise ExportError(f"dl.export.onnx: exports Sequential and functional models; got {type(model).__name__} "
                          f"'{getattr(model, 'name', '?')}'")
    if not isinstance(model, Sequential) and model.graph is None:
        raise ExportError(f"dl.export.onnx: model '{model.name}' is subclassed: its call is Python code, which "
                          f"ONNX cannot hold; build it as Model(inputs, outputs) to export it")
    if not model.built or model.graph is None:
        raise ExportError(f"dl.export.onnx: model '{model.name}' is not built; give its first layer an "
                          f"input shape (layers.Input(...)) or call it on data first")
    return model.graph


def _dims(shape: tuple, names: tuple) -> list:
    return [names[i] if n is None and i < len(names) else n for i, n in enumerate(shape)]


def _io_names(model, graph) -> tuple[list[str], list[str]]:
    """The graph's input and output names: "input" and "output" for a model of one, else the
    names Keras gives them (the Input layers', the output layers')."""
    inputs = ["input"] if len(graph.inputs) == 1 else list(model.input_names)
    outputs = ["output"] if len(graph.outputs) == 1 else list(model.output_names)
    outputs += [f"{name}_mask" for name in outputs]   # kept free for the masks that come out
    repeated = sorted({name for name in inputs + outputs if (inputs + outputs).count(name) > 1})
    if repeated:
        raise ExportError(f"dl.export.onnx: model '{model.name}' would name two of its inputs and outputs "
                          f"{', '.join(repeated)}; rename the layer making one of them")
    return inputs, outputs[:len(graph.outputs)]


def _check_call(node) -> None:
    """Refuse the layer calls the graph cannot reproduce: several outputs, or call arguments."""
    layer, kind = node.layer, type(node.layer).__name__
    if kind not in CONVERTERS:
        raise ExportError(f"dl.export.onnx: layer '{layer.name}' ({kind}) is not supported by the ONNX "
                          f"exporter; supported: {', '.join(sorted(CONVERTERS))}")
    if len(node.outputs) != 1:
        raise ExportError(f"dl.export.onnx: layer '{layer.name}' ({kind}) returns {len(node.outputs)} tensors "
                          f"(return_state=True, or Bidirectional merge_mode=None); the exporter takes layers of "
                          f"one output")
    arguments = {key: value for key, value in node.kwargs.items() if not (key == "training" and not value)}
    if arguments:
        raise ExportError(f"dl.export.onnx: layer '{layer.name}' ({kind}) is called with {arguments}; the "
                          f"exporter writes inference graphs of plain calls (training=True and other call "
                          f"arguments are not supported)")


def build_graph(model, opset: int = MIN_OPSET, mask_input: bool = False, final_activation: str | None = None,
                metadata: dict | None = None):
    """The ONNX ModelProto of ``model``, checked by ``onnx.checker``; see ``export_onnx``."""
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"dl.export.onnx: opset must be an int from {MIN_OPSET} (LayerNormalization's "
                          f"first) to {MAX_OPSET}, got {opset!r}")
    model_graph = _graph_of(model)
    record = getattr(model, "quantization", None)   # set by dl.quantize and dl.quantize.load
    weights = model.weights
    graph = GraphBuilder(opset, {id(weights[i]): scales for i, scales in record["weights"].items()}
                         if record else None)
    onnx, helper = graph.onnx, graph.helper
    input_names, output_names = _io_names(model, model_graph)
    for name in input_names + output_names + [f"{name}_mask" for name in output_names] + ["mask"]:
        graph.unique(name)   # taken first, so no layer's values can take them
    values: dict[int, Value] = {}   # id(SymbolicTensor) -> its Value
    inputs = []
    for symbolic, name in zip(model_graph.inputs, input_names):
        inputs.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT,
                                                    _dims(tuple(symbolic.shape), DIMENSION_NAMES)))
        values[id(symbolic)] = Value(name, tuple(symbolic.shape))
    if mask_input:  # the mask minidl's Model.__call__(x, mask=) gives its first input
        first = model_graph.inputs[0]
        if len(first.shape) < 3:
            raise ExportError(f"dl.export.onnx: mask_input=True needs inputs (batch, steps, ...), but "
                              f"model '{model.name}' takes {tuple(first.shape)}")
        inputs.append(helper.make_tensor_value_info("mask", onnx.TensorProto.BOOL, ["batch", "steps"]))
        values[id(first)] = values[id(first)].with_(mask="mask")
    for node in model_graph.nodes:
        if not node.inputs:   # an InputLayer: its Value is the graph input
            continue
        _check_call(node)
        given = [values[id(x)] for x in node.inputs]
        x = given if node.as_list else given[0]
        values[id(node.outputs[0])] = CONVERTERS[type(node.layer).__name__](graph, node.layer, x,
                                                                            tuple(node.outputs[0].shape))
    outputs = []
    for symbolic, name in zip(model_graph.outputs, output_names):
        x = values[id(symbolic)]
        y = x.name
        if final_activation is not None:
            y = activation(graph, final_activation, y, "final_activation", "dl.export.onnx final_activation")
        graph.nodes.append(helper.make_node("Identity", [y], [name], name=f"{name}/Identity"))
        output_dims = [n if n is not None else (None if i else "batch") for i, n in enumerate(x.shape)]
        outputs.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, output_dims))
        if x.mask is not None:
            graph.nodes.append(helper.make_node("Identity", [x.mask], [f"{name}_mask"], name=f"{name}_mask/Identity"))
            outputs.append(helper.make_tensor_value_info(f"{name}_mask", onnx.TensorProto.BOOL, ["batch", None]))
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
        model: a built Sequential or functional model of the layers in ``CONVERTERS``
            (anything else raises an ExportError naming the layer and the reason). A model ``dl.quantize`` made keeps
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
