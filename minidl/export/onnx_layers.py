"""Each minidl layer (but the recurrent ones, in onnx_recurrent.py) as ONNX nodes.

A converter is ``convert(graph, layer, x, out_shape) -> Value``: it reads the layer's weights in
minidl's (Keras') layout, writes them in ONNX's, adds the nodes that compute the layer from
``x`` and passes the mask on as the layer does in minidl (``compute_mask``). ``CONVERTERS``
maps a layer class name to its converter; ``onnx_export`` looks layers up there.

The layout conversions, each where it happens:

* Channels. minidl and Keras keep channels last, (batch, steps, channels) and (batch, height,
  width, channels); ONNX Conv and pooling read channels first, (batch, channels, ...). Each
  convolution or pooling layer is wrapped in a Transpose pair (``channels_first`` and
  ``channels_last``), which ONNX Runtime cancels between neighbours.
* Kernels. A Keras Conv2D kernel is (kh, kw, in, filters), a Conv1D kernel (k, in, filters);
  ONNX Conv wants (filters, in, kh, kw) and (filters, in, k): the filter axis first.
* 'same' padding. Keras puts the odd extra row or step at the end: ONNX's auto_pad SAME_UPPER.
  Conv1D's 'causal' is explicit pads, (k - 1)·d zeros before the first step and none after.
* Average pooling. minidl averages over the real entries of a window at the edge: ONNX's
  AveragePool with count_include_pad=0 (its default).
* Normalisation ε. Keras' BatchNormalization and LayerNormalization add ε = 1e-3 where ONNX's
  ops default to 1e-5: the layer's epsilon is always written out. BatchNormalization at inference
  is a per-feature affine map, γ/√(σ² + ε) and β - μ·γ/√(σ² + ε), folded here in float64 (ONNX's
  BatchNormalization op would also want the features on axis 1).
"""
from __future__ import annotations

import numpy as np

from minidl.export.errors import ExportError
from minidl.export.onnx_graph import GraphBuilder, Value

# Keras' SELU constants (Klambauer et al., 2017)
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def activation_name(layer) -> str:
    """The Keras name of a layer's activation, or an ExportError for a function ONNX cannot know."""
    name = layer.activation_name
    if name is None:
        return "linear"
    if isinstance(name, str):
        return name
    raise ExportError(f"{type(layer).__name__} '{layer.name}': its activation {name!r} is a Python "
                      f"function, which ONNX cannot hold; give the activation by its Keras name")


def activation(graph: GraphBuilder, name: str, x: str, hint: str, where: str) -> str:
    """ONNX nodes for a Keras activation by name (softmax and log_softmax over the last axis)."""
    simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus",
              "softsign": "Softsign", "exponential": "Exp"}
    if name == "linear":
        return x
    if name in simple:
        return graph.node(simple[name], [x], hint)
    if name == "softmax":
        return graph.node("Softmax", [x], hint, axis=-1)
    if name == "log_softmax":
        return graph.node("LogSoftmax", [x], hint, axis=-1)
    if name == "elu":
        return graph.node("Elu", [x], hint, alpha=1.0)
    if name == "leaky_relu":  # minidl's and Keras' activation default, alpha 0.2
        return graph.node("LeakyRelu", [x], hint, alpha=0.2)
    if name == "selu":
        return graph.node("Selu", [x], hint, alpha=SELU_ALPHA, gamma=SELU_SCALE)
    raise ExportError(f"{where}: activation {name!r} is not supported by the ONNX exporter")


def _where(layer) -> str:
    return f"{type(layer).__name__} '{layer.name}'"


def _weight(tensor) -> np.ndarray:
    return np.asarray(tensor.numpy(), dtype=np.float32)


# --- core ------------------------------------------------------------------------------------------
def convert_dense(graph: GraphBuilder, layer, x: Value, out_shape: tuple) -> Value:
    """y = act(x·W + b): MatMul broadcasts over every leading axis, as minidl's affine does."""
    kernel = graph.kernel(layer.kernel, _weight(layer.kernel), f"{layer.name}/kernel", axis=1)
    y = graph.node("MatMul", [x.name, kernel], layer.name)
    if layer.bias is not None:
        y = graph.node("Add", [y, graph.constant(_weight(layer.bias), f"{layer.name}/bias")], layer.name)
    y = activation(graph, activation_name(layer), y, f"{layer.name}/act", _where(layer))
    return x.with_(name=y, shape=out_shape)


def convert_activation(graph, layer, x: Value, out_shape: tuple) -> Value:
    return x.with_(name=activation(graph, activation_name(layer), x.name, layer.name, _where(layer)),
                   shape=out_shape)


def convert_identity(graph, layer, x: Value, out_shape: tuple) -> Value:
    """Dropout at inference, and InputLayer: nothing to compute; the mask passes."""
    return x.with_(shape=out_shape)


def convert_flatten(graph, layer, x: Value, out_shape: tuple) -> Value:
    """Flatten(axis=1): (batch, d1, d2, ...) -> (batch, d1·d2·...). The mask is dropped, as minidl does."""
    return Value(graph.node("Flatten", [x.name], layer.name, axis=1), out_shape)


def convert_reshape(graph, layer, x: Value, out_shape: tuple) -> Value:
    """Reshape to (batch, *target_shape): ONNX's 0 copies the batch size, -1 is inferred as in minidl."""
    if 0 in layer.target_shape:
        raise ExportError(f"{_where(layer)}: a 0 in target_shape {layer.target_shape} is not supported "
                          f"(ONNX Reshape reads 0 as 'copy this axis')")
    shape = graph.ints((0,) + tuple(layer.target_shape), f"{layer.name}/shape")
    return Value(graph.node("Reshape", [x.name, shape], layer.name), out_shape)


def convert_permute(graph, layer, x: Value, out_shape: tuple) -> Value:
    """Transpose with the batch axis kept first: perm (0, *dims). The mask is dropped, as minidl
    (and Keras) drop it: the steps may have moved."""
    return Value(graph.transpose(x.name, (0,) + tuple(layer.dims), layer.name), out_shape)


def convert_masking(graph, layer, x: Value, out_shape: tuple) -> Value:
    """keep[b, t] = any feature of x[b, t] differs from mask_value; y = where(keep, x, 0)."""
    value = graph.constant(np.float32(layer.mask_value), f"{layer.name}/mask_value")
    differs = graph.node("Not", [graph.node("Equal", [x.name, value], f"{layer.name}/equal")], f"{layer.name}/differs")
    # "any" over the last axis: ReduceMax does not take bool, so through 0/1 floats
    as_float = graph.node("Cast", [differs], f"{layer.name}/differs_float", to=graph.onnx.TensorProto.FLOAT)
    any_float = graph.reduce("ReduceMax", as_float, [-1], f"{layer.name}/any")
    mask = graph.node("Cast", [any_float], f"{layer.name}/mask", to=graph.onnx.TensorProto.BOOL)
    zero = graph.constant(np.float32(0), f"{layer.name}/zero")
    y = graph.where_mask(mask, x.name, zero, layer.name)
    return Value(y, out_shape, mask=mask, right_padded=True)


# --- convolution and pooling -----------------------------------------------------------------------
def _strided_mask(graph: GraphBuilder, x: Value, y: str, stride: int, hint: str) -> str | None:
    """minidl's time_mask: mask[:, ::stride] cut to the output's number of steps."""
    if x.mask is None:
        return None
    steps = graph.node("Shape", [y], f"{hint}/steps", start=1, end=2)
    # Slice's end counts input steps: out_steps·stride ends after the last one kept
    end = graph.node("Mul", [steps, graph.ints([stride], f"{hint}/stride")], f"{hint}/mask_end")
    return graph.node("Slice", [x.mask, graph.ints([0], f"{hint}/mask_start"), end,
                                graph.ints([1], f"{hint}/mask_axis"), graph.ints([stride], f"{hint}/mask_step")],
                      f"{hint}/mask")


def _same_padding(graph: GraphBuilder, x: str, layer) -> str:
    """x (batch, channels, *spatial) padded as Keras' 'same': total = max((⌈n/s⌉ - 1)·s + (k - 1)·d
    + 1 - n, 0) per axis, the odd one at the end. Written out because ONNX Runtime's SAME_UPPER
    refuses dilation; computed in the graph, since n may vary from batch to batch."""
    rank, hint = layer.rank, f"{layer.name}/same"
    n = graph.node("Shape", [x], f"{hint}/n", start=2, end=2 + rank)
    s = graph.ints(layer.strides, f"{hint}/s")
    span = graph.ints([(k - 1) * d + 1 for k, d in zip(layer.kernel_size, layer.dilation_rate)], f"{hint}/span")
    one = graph.ints([1], f"{hint}/one")
    out = graph.node("Div", [graph.node("Sub", [graph.node("Add", [n, s], f"{hint}/n_s"), one], f"{hint}/n_s_1"), s],
                     f"{hint}/out")   # ⌈n/s⌉ in integers
    needed = graph.node("Sub", [graph.node("Add", [graph.node("Mul", [graph.node("Sub", [out, one], f"{hint}/o1"), s],
                                                              f"{hint}/o1s"), span], f"{hint}/reach"), n],
                        f"{hint}/needed")
    total = graph.node("Max", [needed, graph.ints([0] * rank, f"{hint}/zero")], f"{hint}/total")
    before = graph.node("Div", [total, graph.ints([2] * rank, f"{hint}/two")], f"{hint}/before")
    after = graph.node("Sub", [total, before], f"{hint}/after")
    zeros = graph.ints([0, 0], f"{hint}/batch_channels")
    pads = graph.node("Concat", [zeros, before, zeros, after], f"{hint}/pads", axis=0)
    return graph.node("Pad", [x, pads], hint)


def _padding_attributes(layer, kernel_size, dilation) -> dict:
    if layer.padding == "valid" or (layer.padding == "same" and any(d > 1 for d in dilation)):
        return {"pads": [0, 0] * len(kernel_size)}   # 'same' with dilation: padded by _same_padding
    if layer.padding == "same":
        return {"auto_pad": "SAME_UPPER"}
    # causal (Conv1D only): all the padding before the first step
    return {"pads": [(kernel_size[0] - 1) * dilation[0], 0]}


def convert_conv(graph, layer, x: Value, out_shape: tuple) -> Value:
    """Conv1D/Conv2D: channels to axis 1, Conv with the kernel's filter axis first, back to channels last."""
    rank = layer.rank
    kernel = _weight(layer.kernel)
    # Keras (k..., in, filters) -> ONNX (filters, in, k...)
    kernel = kernel.transpose((rank + 1, rank) + tuple(range(rank)))
    x_first = graph.channels_first(x.name, rank, f"{layer.name}/nchw")
    if layer.padding == "same" and any(d > 1 for d in layer.dilation_rate):
        x_first = _same_padding(graph, x_first, layer)
    inputs = [x_first, graph.kernel(layer.kernel, kernel, f"{layer.name}/kernel", axis=0)]
    if layer.bias is not None:
        inputs.append(graph.constant(_weight(layer.bias), f"{layer.name}/bias"))
    y = graph.node("Conv", inputs, layer.name, kernel_shape=list(layer.kernel_size), strides=list(layer.strides),
                   dilations=list(layer.dilation_rate),
                   **_padding_attributes(layer, layer.kernel_size, layer.dilation_rate))
    y = graph.channels_last(y, rank, f"{layer.name}/nhwc")
    mask = _strided_mask(graph, x, y, layer.strides[0], layer.name) if rank == 1 else None
    y = activation(graph, activation_name(layer), y, f"{layer.name}/act", _where(layer))
    return Value(y, out_shape, mask=mask, right_padded=x.right_padded)


def convert_pooling(graph, layer, x: Value, out_shape: tuple) -> Value:
    """MaxPool / AveragePool (count_include_pad=0: the mean over real entries only)."""
    rank = layer.rank
    op = "MaxPool" if type(layer).__name__.startswith("Max") else "AveragePool"
    padding = {"auto_pad": "SAME_UPPER"} if layer.padding == "same" else {"pads": [0, 0] * rank}
    y = graph.node(op, [graph.channels_first(x.name, rank, f"{layer.name}/nchw")], layer.name,
                   kernel_shape=list(layer.pool_size), strides=list(layer.strides), **padding)
    y = graph.channels_last(y, rank, f"{layer.name}/nhwc")
    mask = _strided_mask(graph, x, y, layer.strides[0], layer.name) if rank == 1 else None
    return Value(y, out_shape, mask=mask, right_padded=x.right_padded)


def convert_global_pooling(graph, layer, x: Value, out_shape: tuple) -> Value:
    """Mean or max over the steps (or pixels); over the valid steps only when masked, as minidl."""
    axes = list(range(1, layer.rank + 1))
    is_max = "Max" in type(layer).__name__
    hint = layer.name
    if x.mask is None or layer.rank != 1:
        y = graph.reduce("ReduceMax" if is_max else "ReduceMean", x.name, axes, hint, keepdims=layer.keepdims)
        return Value(y, out_shape)
    if is_max:  # masked steps set to -inf, so padding never wins
        minus_inf = graph.constant(np.float32(-np.inf), f"{hint}/minus_inf")
        y = graph.reduce("ReduceMax", graph.where_mask(x.mask, x.name, minus_inf, f"{hint}/masked"), axes, hint,
                         keepdims=layer.keepdims)
        return Value(y, out_shape)
    weights = graph.unsqueeze(graph.node("Cast", [x.mask], f"{hint}/weights", to=graph.onnx.TensorProto.FLOAT),
                              [-1], f"{hint}/weights3")
    total = graph.reduce("ReduceSum", graph.node("Mul", [x.name, weights], f"{hint}/weighted"), axes, f"{hint}/sum",
                         keepdims=layer.keepdims)
    count = graph.reduce("ReduceSum", weights, axes, f"{hint}/count", keepdims=layer.keepdims)
    return Value(graph.node("Div", [total, count], hint), out_shape)


def convert_zero_padding(graph, layer, x: Value, out_shape: tuple) -> Value:
    """Pad with zeros; the mask (1-D only) is padded with False, so a left pad leaves it no prefix."""
    pairs = (layer.padding,) if type(layer).__name__ == "ZeroPadding1D" else layer.padding
    before = [0] + [p[0] for p in pairs] + [0]
    after = [0] + [p[1] for p in pairs] + [0]
    y = graph.node("Pad", [x.name, graph.ints(before + after, f"{layer.name}/pads")], layer.name)
    if x.mask is None or len(pairs) != 1:
        return Value(y, out_shape)
    mask = graph.node("Pad", [x.mask, graph.ints([0, pairs[0][0], 0, pairs[0][1]], f"{layer.name}/mask_pads")],
                      f"{layer.name}/mask")
    return Value(y, out_shape, mask=mask, right_padded=x.right_padded and pairs[0][0] == 0)


# --- normalisation ---------------------------------------------------------------------------------
def _broadcast_shape(ndim: int, axes, sizes) -> list:
    shape = [1] * ndim
    for axis, size in zip(axes, sizes):
        shape[axis] = size
    return shape


def convert_batch_normalization(graph, layer, x: Value, out_shape: tuple) -> Value:
    """Inference: y = x·s + t with s = γ/√(σ² + ε), t = β - μ·s, per feature (ε is Keras' 1e-3)."""
    ndim = len(x.shape)
    axis = layer.axis % ndim
    mean = layer.moving_mean.numpy().astype(np.float64)
    variance = layer.moving_variance.numpy().astype(np.float64)
    gamma = layer.gamma.numpy().astype(np.float64) if layer.gamma is not None else 1.0
    beta = layer.beta.numpy().astype(np.float64) if layer.beta is not None else 0.0
    scale = gamma / np.sqrt(variance + layer.epsilon)
    shift = beta - mean * scale
    shape = _broadcast_shape(ndim, [axis], [mean.shape[0]])
    y = graph.node("Mul", [x.name, graph.constant(scale.reshape(shape), f"{layer.name}/scale")], f"{layer.name}/mul")
    y = graph.node("Add", [y, graph.constant(shift.reshape(shape), f"{layer.name}/shift")], layer.name)
    return x.with_(name=y, shape=out_shape)


def convert_layer_normalization(graph, layer, x: Value, out_shape: tuple) -> Value:
    """ONNX LayerNormalization (opset ≥ 17) normalises the axes from ``axis`` to the last, with
    the layer's ε written out (Keras 1e-3, ONNX's default 1e-5)."""
    ndim = len(x.shape)
    axes = tuple(layer.axes)
    if axes != tuple(range(axes[0], ndim)):
        raise ExportError(f"{_where(layer)}: ONNX LayerNormalization normalises the trailing axes, "
                          f"got axis {layer.axis} of a {ndim}-D input; use the last axes")
    shape = layer.feature_shape
    gamma = _weight(layer.gamma) if layer.gamma is not None else np.ones(shape, np.float32)
    inputs = [x.name, graph.constant(gamma, f"{layer.name}/gamma")]
    if layer.beta is not None:
        inputs.append(graph.constant(_weight(layer.beta), f"{layer.name}/beta"))
    y = graph.node("LayerNormalization", inputs, layer.name, axis=axes[0], epsilon=layer.epsilon)
    return x.with_(name=y, shape=out_shape)


def convert_normalization(graph, layer, x: Value, out_shape: tuple) -> Value:
    """(x - mean) / max(√variance, 1e-7), the constants computed as minidl computes them."""
    shape = layer.broadcast_shape
    mean = layer.mean.numpy().reshape(shape).astype(np.float32)
    scale = np.maximum(np.sqrt(layer.variance.numpy().reshape(shape)), 1e-7).astype(np.float32)
    mean_name = graph.constant(mean, f"{layer.name}/mean")
    scale_name = graph.constant(scale, f"{layer.name}/scale")
    if layer.invert:
        y = graph.node("Add", [graph.node("Mul", [x.name, scale_name], f"{layer.name}/mul"), mean_name], layer.name)
    else:
        y = graph.node("Div", [graph.node("Sub", [x.name, mean_name], f"{layer.name}/sub"), scale_name], layer.name)
    return x.with_(name=y, shape=out_shape)


# --- wrappers --------------------------------------------------------------------------------------
def convert_time_distributed(graph, layer, x: Value, out_shape: tuple) -> Value:
    """y[:, t] = layer(x[:, t]). Dense needs no folding (MatMul broadcasts over the steps); any
    other layer runs on the steps folded into the batch, (batch·steps, ...), as minidl folds them."""
    inner = layer.layer
    if type(inner).__name__ == "Dense":
        return convert_dense(graph, inner, x, out_shape).with_(mask=x.mask, right_padded=x.right_padded)
    if type(inner).__name__ not in CONVERTERS or any(n is None for n in x.shape[2:] + out_shape[2:]):
        raise ExportError(f"{_where(layer)}: only Dense, or a non-recurrent layer with fixed per-step "
                          f"shapes, can be exported inside TimeDistributed; got {type(inner).__name__} on "
                          f"steps of shape {x.shape[2:]}")
    folded = graph.node("Reshape", [x.name, graph.ints((-1,) + tuple(x.shape[2:]), f"{layer.name}/fold")],
                        f"{layer.name}/folded")
    y = CONVERTERS[type(inner).__name__](graph, inner, Value(folded, (None,) + tuple(x.shape[2:])),
                                         (None,) + tuple(out_shape[2:]))
    leading = graph.node("Shape", [x.name], f"{layer.name}/batch_steps", start=0, end=2)
    shape = graph.node("Concat", [leading, graph.ints(out_shape[2:], f"{layer.name}/tail")], f"{layer.name}/shape",
                       axis=0)
    return Value(graph.node("Reshape", [y.name, shape], layer.name), out_shape, x.mask, x.right_padded)


CONVERTERS = {
    "Dense": convert_dense, "Activation": convert_activation, "Dropout": convert_identity,
    "InputLayer": convert_identity, "Flatten": convert_flatten, "Reshape": convert_reshape,
    "Permute": convert_permute, "Masking": convert_masking, "Conv1D": convert_conv, "Conv2D": convert_conv,
    "MaxPooling1D": convert_pooling, "MaxPooling2D": convert_pooling,
    "AveragePooling1D": convert_pooling, "AveragePooling2D": convert_pooling,
    "GlobalAveragePooling1D": convert_global_pooling, "GlobalMaxPooling1D": convert_global_pooling,
    "GlobalAveragePooling2D": convert_global_pooling, "GlobalMaxPooling2D": convert_global_pooling,
    "ZeroPadding1D": convert_zero_padding, "ZeroPadding2D": convert_zero_padding,
    "BatchNormalization": convert_batch_normalization, "LayerNormalization": convert_layer_normalization,
    "Normalization": convert_normalization, "TimeDistributed": convert_time_distributed,
}

__all__ = ["CONVERTERS", "activation", "activation_name"]
