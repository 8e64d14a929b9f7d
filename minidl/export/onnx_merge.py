"""The merge layers (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot) as ONNX nodes.

A merge converter is ``convert(graph, layer, xs, out_shape) -> Value`` with ``xs`` the list of
input Values, in call order. The elementwise ones are ONNX ops that broadcast as NumPy does, as
minidl's merges do: Add is ``Sum``, Average ``Mean``, Maximum ``Max``, Minimum ``Min`` (all four
take any number of inputs), Subtract ``Sub`` and Multiply a chain of ``Mul``.

Masks follow minidl's (Keras') rules, so that a recurrent layer after a merge sees the mask it
sees in minidl:

* elementwise merges: the OR of the inputs' masks, or none when one input has none. The OR of
  right-padded masks (each a run of valid steps, then padding) is right-padded: the longest run.
* Concatenate: each input's mask (all True for one without) widened to its input's shape, the
  widened masks joined along the axis, then "any" over the last axis. Joined along the steps
  (axis 1) the result is a run, a gap, a run: no longer right-padded, and a recurrent layer
  after it is refused at export.
* Dot drops the mask.
"""
from __future__ import annotations

from functools import reduce

import numpy as np

from minidl.export.errors import ExportError
from minidl.export.onnx_graph import GraphBuilder, Value

# minidl merge class -> the variadic ONNX op that computes it
VARIADIC = {"Add": "Sum", "Average": "Mean", "Maximum": "Max", "Minimum": "Min"}
# Keras' l2_normalize floor under the squared norm (minidl.layers.merge._l2_normalize)
L2_FLOOR = 1e-12


def _or_of_masks(graph: GraphBuilder, xs: list, hint: str) -> tuple[str | None, bool]:
    """(mask, right_padded) of an elementwise merge: the OR, when every input has a mask."""
    if any(x.mask is None for x in xs):
        return None, True
    mask = reduce(lambda a, b: graph.node("Or", [a, b], f"{hint}/mask"), [x.mask for x in xs])
    return mask, all(x.right_padded for x in xs)


def convert_elementwise(graph: GraphBuilder, layer, xs: list, out_shape: tuple) -> Value:
    """Add, Subtract, Multiply, Average, Maximum, Minimum: one broadcasting op over the inputs."""
    kind = type(layer).__name__
    names = [x.name for x in xs]
    if kind in VARIADIC:
        y = graph.node(VARIADIC[kind], names, layer.name)
    elif kind == "Subtract":
        y = graph.node("Sub", names, layer.name)
    else:  # Multiply: ONNX's Mul takes two inputs
        y = reduce(lambda a, b: graph.node("Mul", [a, b], layer.name), names)
    mask, right_padded = _or_of_masks(graph, xs, layer.name)
    return Value(y, out_shape, mask=mask, right_padded=right_padded)


def _widened_mask(graph: GraphBuilder, x: Value, hint: str) -> str:
    """x's (batch, steps) mask broadcast to x's shape; all True where x has no mask."""
    rank = len(x.shape)
    shape = graph.node("Shape", [x.name], f"{hint}/shape")
    if x.mask is None:
        source = graph.constant(np.ones([1] * rank, dtype=bool), f"{hint}/all_valid")
    else:
        source = graph.unsqueeze(x.mask, list(range(2, rank)), f"{hint}/mask_axes") if rank > 2 else x.mask
    return graph.node("Expand", [source, shape], f"{hint}/widened")


def convert_concatenate(graph: GraphBuilder, layer, xs: list, out_shape: tuple) -> Value:
    """Concat along the layer's axis; the mask as minidl joins it (see the module docstring)."""
    rank = len(xs[0].shape)
    axis = layer.axis % rank
    y = graph.node("Concat", [x.name for x in xs], layer.name, axis=axis)
    if all(x.mask is None for x in xs):
        return Value(y, out_shape)
    hint = layer.name
    widened = [_widened_mask(graph, x, f"{hint}/input{i}") for i, x in enumerate(xs)]
    joined = graph.node("Concat", widened, f"{hint}/joined_mask", axis=axis)
    # "any" over the last axis: ReduceMax does not take bool, so through 0/1 floats
    as_float = graph.node("Cast", [joined], f"{hint}/mask_float", to=graph.onnx.TensorProto.FLOAT)
    mask = graph.node("Cast", [graph.reduce("ReduceMax", as_float, [-1], f"{hint}/any")], f"{hint}/mask",
                      to=graph.onnx.TensorProto.BOOL)
    along_steps = axis == 1 and rank > 2
    return Value(y, out_shape, mask=mask, right_padded=not along_steps and all(x.right_padded for x in xs))


def _l2_normalized(graph: GraphBuilder, x: str, axis: int, hint: str) -> str:
    """x / √max(Σ x² along axis, 1e-12), Keras' l2_normalize."""
    squares = graph.reduce("ReduceSum", graph.node("Mul", [x, x], f"{hint}/squares"), [axis], f"{hint}/sum",
                           keepdims=True)
    floor = graph.constant(np.float32(L2_FLOOR), f"{hint}/floor")
    norm = graph.node("Sqrt", [graph.node("Max", [squares, floor], f"{hint}/floored")], f"{hint}/norm")
    return graph.node("Div", [x, norm], hint)


def convert_dot(graph: GraphBuilder, layer, xs: list, out_shape: tuple) -> Value:
    """Per-sample dot products: both inputs as (batch, m, k) and (batch, k, n), one MatMul,
    then the axes a 2-D input did not bring squeezed away (minidl's Dot.merge)."""
    (x, y), hint = xs, layer.name
    ranks = [len(x.shape), len(y.shape)]
    if any(r not in (2, 3) for r in ranks):
        raise ExportError(f"Dot '{layer.name}': inputs of rank 2 or 3 are exported, got {x.shape} and {y.shape}")
    ax, ay = (a % r for a, r in zip(layer.pair, ranks))
    left, right = x.name, y.name
    if layer.normalize:
        left = _l2_normalized(graph, left, ax, f"{hint}/left_normalized")
        right = _l2_normalized(graph, right, ay, f"{hint}/right_normalized")
    if ranks[0] == 2:
        left = graph.unsqueeze(left, [1], f"{hint}/left")
    elif ax != 2:
        left = graph.transpose(left, [0, 2, 1], f"{hint}/left")
    if ranks[1] == 2:
        right = graph.unsqueeze(right, [2], f"{hint}/right")
    elif ay != 1:
        right = graph.transpose(right, [0, 2, 1], f"{hint}/right")
    out = graph.node("MatMul", [left, right], f"{hint}/matmul")      # (batch, m, n)
    if ranks == [3, 2] or ranks == [2, 2]:
        out = graph.squeeze(out, [2], hint)    # (batch, m) — two 2-D inputs leave (batch, 1)
    elif ranks == [2, 3]:
        out = graph.squeeze(out, [1], hint)
    return Value(out, out_shape)


CONVERTERS = {**{kind: convert_elementwise for kind in ("Add", "Subtract", "Multiply", "Average", "Maximum",
                                                        "Minimum")},
              "Concatenate": convert_concatenate, "Dot": convert_dot}

__all__ = ["CONVERTERS"]
