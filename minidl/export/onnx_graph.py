"""The ONNX graph under construction: named values, nodes, weights, and the few idioms the layer
converters share (a reduction in either opset's form, time reversal, channels-first round trips).

An ONNX graph is a list of nodes that read and write *named* values; the weights are
"initializers", constant tensors stored in the file. ``GraphBuilder`` hands out unique names and
collects the three lists; a ``Value`` is one named tensor as the converters see it, with the
static shape minidl found for it (None where it varies: the batch, and the time axis of
variable-length models) and the mask that rides along, as ``Tensor.mask`` does in minidl.

Nothing here knows a model's structure: ``onnx_export`` walks a model's graph (a Sequential's is
a chain, a functional model's a DAG) and hands each layer call its input Values, one per edge.

The builders are the ``onnx`` package's (``onnx.helper``, ``onnx.numpy_helper``), imported when
an export starts: minidl itself never needs onnx, and the exporter never needs torch or Keras.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np

from minidl.export.errors import ExportError

__all__ = ["ExportError", "GraphBuilder", "Value", "onnx_module"]

# Opsets this exporter writes. 17 is the first with LayerNormalization; from 18 on the Reduce*
# ops take their axes as an input instead of an attribute (``GraphBuilder.reduce`` writes both).
MIN_OPSET = 17
MAX_OPSET = 21
INT64_MAX = np.iinfo(np.int64).max


def onnx_module():
    """The ``onnx`` package, or an ImportError saying how to install it."""
    try:
        import onnx
    except ImportError as error:
        raise ImportError("exporting to ONNX needs the onnx package: pip install onnx "
                          "(and onnxruntime to run the result)") from error
    return onnx


@dataclass(frozen=True)
class Value:
    """One tensor of the graph as a converter sees it.

    Attributes:
        name: its ONNX name.
        shape: the static shape, batch axis first; None where the size varies.
        mask: name of a bool (batch, steps) value, or None: minidl's ``Tensor.mask``.
        right_padded: whether the mask is a prefix of True steps in every row (so that ONNX's
            ``sequence_lens`` can describe it). Masking makes prefix masks from right-padded
            batches; a left pad (ZeroPadding1D) breaks that.
    """

    name: str
    shape: tuple
    mask: str | None = None
    right_padded: bool = True

    def with_(self, **changes) -> "Value":
        return replace(self, **changes)


class GraphBuilder:
    """Nodes, initializers and unique names of one ONNX graph, for one opset."""

    def __init__(self, opset: int, quantized: dict | None = None):
        """``quantized`` maps id(weight Tensor) to its per-channel int8 scales (dl.quantize)."""
        self.quantized = quantized or {}
        self.onnx = onnx_module()
        self.helper = self.onnx.helper
        self.opset = opset
        self.nodes: list = []
        self.initializers: list = []
        self._used: set[str] = set()
        self._stored: dict[tuple, str] = {}   # (dtype, shape, digest) -> initializer name

    def unique(self, hint: str) -> str:
        """A name not used yet in this graph, derived from ``hint`` (layer names are unique in a
        model, but one layer writes several values)."""
        name, n = hint, 0
        while name in self._used:
            n += 1
            name = f"{hint}_{n}"
        self._used.add(name)
        return name

    def constant(self, array, hint: str, dtype=None) -> str:
        """A weight or constant stored as an initializer; returns its name. An array stored
        already (a shared layer's weights, called a second time) is not stored again: its name
        is returned, so the file holds each weight once."""
        array = np.ascontiguousarray(np.asarray(array, dtype=dtype))
        if array.dtype == np.float64:
            array = array.astype(np.float32)  # the graph is float32 throughout, as minidl's models
        key = (array.dtype.str, array.shape, hashlib.sha256(array.tobytes()).digest())
        if key in self._stored:
            return self._stored[key]
        name = self.unique(hint)
        self._stored[key] = name
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def kernel(self, weight, array: np.ndarray, hint: str, axis: int, onnx_scales=None) -> str:
        """A kernel in ONNX's layout (``array``, made from ``weight``). A kernel ``dl.quantize``
        made is stored as its int8 q with the scales, per channel on ``axis``, and a
        DequantizeLinear node (opset ≥ 13 for per-axis scales) computes q · s, the very weight
        minidl computes with; ``onnx_scales`` puts minidl's scales in the array's channel order."""
        scales = self.quantized.get(id(weight))
        if scales is None:
            return self.constant(array, hint)
        scales = np.asarray(scales if onnx_scales is None else onnx_scales(scales), dtype=np.float32)
        shape = [1] * array.ndim
        shape[axis] = -1
        q = np.clip(np.rint(array / scales.reshape(shape)), -127, 127).astype(np.int8)
        return self.node("DequantizeLinear", [self.constant(q, f"{hint}_int8"), self.constant(scales, f"{hint}_scale"),
                                              self.constant(np.zeros(scales.shape, np.int8), f"{hint}_zero_point")],
                         hint, axis=axis)

    def ints(self, values, hint: str) -> str:
        """An int64 1-D constant: shapes, axes, slice bounds."""
        return self.constant(np.asarray(values, dtype=np.int64).reshape(-1), hint)

    def node(self, op: str, inputs: list, hint: str, outputs: int = 1, **attributes):
        """Append a node; returns its output name (or a list of names when ``outputs`` > 1).
        An empty string among ``inputs`` is ONNX's "optional input left out"."""
        names = [self.unique(hint if outputs == 1 else f"{hint}_{i}") for i in range(outputs)]
        self.nodes.append(self.helper.make_node(op, list(inputs), names, name=self.unique(f"{hint}/{op}"),
                                                **attributes))
        return names[0] if outputs == 1 else names

    # --- idioms -------------------------------------------------------------------------------
    def reduce(self, op: str, x: str, axes, hint: str, keepdims: bool = False) -> str:
        """ReduceSum/Mean/Max over ``axes``: an attribute up to opset 17, an input from 18 (ReduceSum
        took an input already at 13)."""
        axes = [int(a) for a in axes]
        if op == "ReduceSum" or self.opset >= 18:
            return self.node(op, [x, self.ints(axes, f"{hint}_axes")], hint, keepdims=int(keepdims))
        return self.node(op, [x], hint, axes=axes, keepdims=int(keepdims))

    def reverse(self, x: str, axis: int, hint: str) -> str:
        """x with ``axis`` reversed, for any length: Slice from -1 back past the start, step -1."""
        return self.node("Slice", [x, self.ints([-1], f"{hint}_start"), self.ints([-INT64_MAX], f"{hint}_end"),
                                   self.ints([axis], f"{hint}_axis"), self.ints([-1], f"{hint}_step")], hint)

    def slice(self, x: str, axis: int, start: int, end: int, hint: str, step: int = 1) -> str:
        return self.node("Slice", [x, self.ints([start], f"{hint}_start"), self.ints([end], f"{hint}_end"),
                                   self.ints([axis], f"{hint}_axis"), self.ints([step], f"{hint}_step")], hint)

    def unsqueeze(self, x: str, axes, hint: str) -> str:
        return self.node("Unsqueeze", [x, self.ints(axes, f"{hint}_axes")], hint)

    def squeeze(self, x: str, axes, hint: str) -> str:
        return self.node("Squeeze", [x, self.ints(axes, f"{hint}_axes")], hint)

    def transpose(self, x: str, perm, hint: str) -> str:
        return self.node("Transpose", [x], hint, perm=[int(p) for p in perm])

    def channels_first(self, x: str, rank: int, hint: str) -> str:
        """(batch, *spatial, channels) -> (batch, channels, *spatial): ONNX Conv and pooling
        read channels on axis 1, minidl and Keras keep them last."""
        return self.transpose(x, [0, rank + 1] + list(range(1, rank + 1)), hint)

    def channels_last(self, x: str, rank: int, hint: str) -> str:
        """The inverse of ``channels_first``. ONNX Runtime's optimiser cancels the pair between
        two convolutions, so the round trip per layer costs nothing at run time."""
        return self.transpose(x, [0] + list(range(2, rank + 2)) + [1], hint)

    def where_mask(self, mask: str, x: str, other: str, hint: str) -> str:
        """x where mask[b, t] is True, else ``other`` (broadcast): masks are (batch, steps), x has
        a features axis after them."""
        return self.node("Where", [self.unsqueeze(mask, [-1], f"{hint}_mask"), x, other], hint)
