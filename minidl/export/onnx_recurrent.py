"""SimpleRNN, LSTM, GRU and Bidirectional as ONNX's RNN, LSTM and GRU nodes.

Weights. ONNX stacks one weight per direction and puts the gate axis first: W (directions,
gates·units, features), R (directions, gates·units, units), B (directions, 2·gates·units) = the
input bias Wb followed by the recurrent bias Rb. Keras' kernels are (features, gates·units) and
(units, gates·units), so each is transposed, and:

* LSTM gate order. Keras' blocks are i, f, c, o (input, forget, candidate, output); ONNX's are
  i, o, f, c. The blocks are reordered; Keras' one bias goes to Wb, Rb is zero.
* GRU. ONNX's gates are z, r, h, as Keras'. Keras' ``reset_after=True`` (the reset gate applied
  after the recurrent product, r ⊙ (h·U_h + b'_h)) is ONNX's ``linear_before_reset=1``, and
  Keras' bias (2, 3·units) is exactly [Wb, Rb]: the input bias, then the recurrent bias.
* Activations. ONNX names them per node: LSTM [f, g, h] = [recurrent_activation, activation,
  activation], GRU [f, g] = [recurrent_activation, activation], RNN [activation].

Time. ONNX's recurrent nodes read X time-major, (steps, batch, features), and write Y (steps,
directions, batch, units) and the last state Y_h (directions, batch, units).

Masks. A right-padded batch is given to ONNX as ``sequence_lens`` (the count of True steps of
each row). ONNX Runtime then stops each row at its length, writes zeros in Y at the padded
steps, and gives the state at the last valid step in Y_h. minidl (like Keras) instead repeats
the last valid output at padded steps of a ``return_sequences`` output (zeros with
``zero_output_for_mask``, which Bidirectional sets): the graph puts Y_h there with a ``Where``
on the mask. With ``go_backwards`` minidl processes the steps last to first and returns its
outputs in that order; ONNX's direction "reverse" does the same steps but writes Y in the input's
order, so the graph reverses Y in time. The padded steps, first in minidl's processed order,
are zero in both. ``sequence_lens`` can only say "the first n steps": a mask with a gap (after a
left pad, say) is refused at export.
"""
from __future__ import annotations

import numpy as np

from minidl.export.errors import ExportError
from minidl.export.onnx_graph import GraphBuilder, Value

ONNX_ACTIVATIONS = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu"}
LSTM_KERAS_TO_ONNX = (0, 3, 1, 2)  # ONNX block k is Keras block LSTM_KERAS_TO_ONNX[k]: i, o, f, c


def _where(layer) -> str:
    return f"{type(layer).__name__} '{layer.name}'"


def _onnx_activation(layer, argument: str) -> str:
    name = getattr(layer, f"{argument}_name")
    name = "linear" if name is None else name
    if not isinstance(name, str) or name not in ONNX_ACTIVATIONS:
        raise ExportError(f"{_where(layer)}: {argument} {name!r} cannot be exported; ONNX recurrent "
                          f"nodes take {', '.join(ONNX_ACTIVATIONS)} here")
    return ONNX_ACTIVATIONS[name]


def _blocks(matrix: np.ndarray, order: tuple, units: int) -> np.ndarray:
    """Gate blocks of the last axis in another order."""
    return np.concatenate([matrix[..., k * units:(k + 1) * units] for k in order], axis=-1)


def onnx_weights(layer) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(W, R, B) in ONNX's layout for one direction, from the layer's Keras weights."""
    kind, units = type(layer).__name__, layer.units
    kernel = layer.kernel.numpy().astype(np.float32)
    recurrent_kernel = layer.recurrent_kernel.numpy().astype(np.float32)
    bias = layer.bias.numpy().astype(np.float32) if layer.bias is not None else None
    if kind == "LSTM":
        kernel, recurrent_kernel = (_blocks(m, LSTM_KERAS_TO_ONNX, units) for m in (kernel, recurrent_kernel))
        bias = None if bias is None else _blocks(bias, LSTM_KERAS_TO_ONNX, units)
    if bias is not None:
        # GRU: Keras' (2, 3·units) rows are Wb and Rb already; the others get Rb = 0
        bias = bias.reshape(-1) if kind == "GRU" else np.concatenate([bias, np.zeros_like(bias)])
        bias = bias[None]
    return kernel.T[None].copy(), recurrent_kernel.T[None].copy(), bias


def _node_attributes(layer) -> tuple[str, dict]:
    kind = type(layer).__name__
    if kind == "LSTM":
        names = [_onnx_activation(layer, "recurrent_activation"), _onnx_activation(layer, "activation"),
                 _onnx_activation(layer, "activation")]
        return "LSTM", {"activations": names}
    if kind == "GRU":
        return "GRU", {"activations": [_onnx_activation(layer, "recurrent_activation"),
                                       _onnx_activation(layer, "activation")], "linear_before_reset": 1}
    return "RNN", {"activations": [_onnx_activation(layer, "activation")]}


def sequence_lengths(graph: GraphBuilder, x: Value, hint: str) -> str:
    """ONNX's sequence_lens from the mask: the number of True steps of each row, int32."""
    counts = graph.node("Cast", [x.mask], f"{hint}/mask_int", to=graph.onnx.TensorProto.INT32)
    return graph.reduce("ReduceSum", counts, [1], f"{hint}/sequence_lens")


def direction_outputs(graph: GraphBuilder, layer, x: Value, time_major: str, lengths: str,
                      input_order: bool = False) -> str:
    """minidl's output of one recurrent layer over ``time_major`` (steps, batch, features).

    Args:
        input_order: for a go_backwards layer with return_sequences, give the outputs in the
            input's time order instead of minidl's processed order (what Bidirectional wants
            after its own reversal).
    """
    if layer.return_state:
        raise ExportError(f"{_where(layer)}: return_state=True gives a list of outputs, which a "
                          f"Sequential cannot pass on; export a model without it")
    op, attributes = _node_attributes(layer)
    W, R, B = onnx_weights(layer)
    hint = layer.name
    def scale_order(scales):  # minidl's per-column scales in ONNX's gate order
        return _blocks(scales, LSTM_KERAS_TO_ONNX, layer.units) if op == "LSTM" else scales
    inputs = [time_major, graph.kernel(layer.kernel, W, f"{hint}/W", 1, scale_order),
              graph.kernel(layer.recurrent_kernel, R, f"{hint}/R", 1, scale_order),
              graph.constant(B, f"{hint}/B") if B is not None else "", lengths]
    direction = "reverse" if layer.go_backwards else "forward"
    # Y and Y_h only: with LSTM's unused Y_c named as well, ONNX Runtime 1.32 planned a (1, batch,
    # units) buffer for a (steps, batch, units) value downstream and failed
    outputs = graph.node(op, inputs, hint, outputs=2, hidden_size=layer.units,
                         direction=direction, **attributes)
    y_all, y_last = outputs[0], outputs[1]
    last = graph.squeeze(y_last, [0], f"{hint}/h")                       # (batch, units)
    masked = x.mask is not None
    if not layer.return_sequences:
        if masked and layer.zero_output_for_mask:  # minidl's last output is zero when that step is masked
            step = 0 if layer.go_backwards else -1
            keep = graph.slice(x.mask, 1, step, step + 1 if step == 0 else 2 ** 62, f"{hint}/last_keep")
            return graph.node("Where", [keep, last, graph.constant(np.float32(0), f"{hint}/zero")], f"{hint}/last")
        return last
    sequence = graph.transpose(graph.squeeze(y_all, [1], f"{hint}/Y"), [1, 0, 2], f"{hint}/batch_major")
    if layer.go_backwards:
        return sequence if input_order else graph.reverse(sequence, 1, f"{hint}/processed_order")
    if masked and not layer.zero_output_for_mask:  # carry the last valid output over the padding
        return graph.where_mask(x.mask, sequence, graph.unsqueeze(last, [1], f"{hint}/h_steps"), f"{hint}/carried")
    return sequence


def _check_mask(layer, x: Value) -> None:
    if x.mask is not None and not x.right_padded:
        raise ExportError(f"{_where(layer)}: its mask is not a run of valid steps followed by padding "
                          f"(a layer before it pads on the left), and ONNX's sequence_lens can only "
                          f"describe right-padded batches")


def convert_recurrent(graph: GraphBuilder, layer, x: Value, out_shape: tuple) -> Value:
    """SimpleRNN / LSTM / GRU; the mask passes on with return_sequences, as in minidl."""
    _check_mask(layer, x)
    time_major = graph.transpose(x.name, [1, 0, 2], f"{layer.name}/time_major")
    lengths = sequence_lengths(graph, x, layer.name) if x.mask is not None else ""
    y = direction_outputs(graph, layer, x, time_major, lengths)
    return Value(y, out_shape, mask=x.mask if layer.return_sequences else None, right_padded=x.right_padded)


def convert_bidirectional(graph: GraphBuilder, layer, x: Value, out_shape: tuple) -> Value:
    """Both directions over the same input, merged as minidl merges them (backward outputs put
    back in input order first, when every step is returned)."""
    _check_mask(layer, x)
    if layer.merge_mode is None:
        raise ExportError(f"{_where(layer)}: merge_mode=None gives a list of outputs, which a Sequential "
                          f"cannot pass on; choose 'concat', 'sum', 'mul' or 'ave'")
    time_major = graph.transpose(x.name, [1, 0, 2], f"{layer.name}/time_major")
    lengths = sequence_lengths(graph, x, layer.name) if x.mask is not None else ""
    forward = direction_outputs(graph, layer.forward_layer, x, time_major, lengths)
    backward = direction_outputs(graph, layer.backward_layer, x, time_major, lengths, input_order=True)
    if layer.return_sequences and not layer.backward_layer.go_backwards:  # the "backward" one runs forwards
        backward = graph.reverse(backward, 1, f"{layer.name}/backward_reversed")
    hint = layer.name
    if layer.merge_mode == "concat":
        y = graph.node("Concat", [forward, backward], hint, axis=-1)
    elif layer.merge_mode == "sum":
        y = graph.node("Add", [forward, backward], hint)
    elif layer.merge_mode == "mul":
        y = graph.node("Mul", [forward, backward], hint)
    else:
        y = graph.node("Mul", [graph.node("Add", [forward, backward], f"{hint}/sum"),
                               graph.constant(np.float32(0.5), f"{hint}/half")], hint)
    return Value(y, out_shape, mask=x.mask if layer.return_sequences else None, right_padded=x.right_padded)


CONVERTERS = {"SimpleRNN": convert_recurrent, "LSTM": convert_recurrent, "GRU": convert_recurrent,
              "Bidirectional": convert_bidirectional}
