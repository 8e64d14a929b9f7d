"""``dl.export.keras``: a minidl model as a real ``keras.Model``, same architecture, same weights.

    keras_model = dl.export.keras(model)        # keras.Sequential, or a functional keras.Model
    keras_model.save("model.keras")             # Keras 3's own file; train on with JAX, TF or torch

minidl's layers take Keras' names, arguments and weight layouts, so each layer becomes the Keras
layer of the same class from its ``get_config()``, and its ``get_weights()`` load unchanged with
``set_weights``. A functional model's graph is replayed call by call on ``keras.Input``s, so
several inputs and outputs, shared layers and the merge layers come across as they are. Keras is imported only when this is called (it stays an optional extra).

Where the two differ (said in minidl's layer docstrings, repeated here because an exported model
meets them): minidl's Conv1D, ZeroPadding1D and 1-D pooling pass a mask on, and GlobalMaxPooling1D
leaves masked steps out; Keras drops the mask at those layers. A model with a Masking layer before
one of them (the digit CRNN) gives the same outputs in Keras on batches without padding, and
different ones on padded batches, where Keras' recurrent layer runs over the padded frames.
Keras 3's Multiply, Maximum and Minimum (not Add, Subtract, Average) also read masks: an entry at
a masked step of one input is taken as the identity (1 for Multiply; the other input's entry for
Maximum and Minimum), where minidl computes on the values as they are; the two agree wherever no
input of those merges carries a mask.
"""
from __future__ import annotations

from minidl.export.errors import ExportError
from minidl.model import Model
from minidl.sequential import Sequential

# minidl config keys that Keras' constructors do not take
_MINIDL_ONLY_KEYS = ("input_shape",)


def keras_module():
    """The ``keras`` package, or an ImportError saying how to get it."""
    try:
        import keras
    except ImportError as error:
        raise ImportError("dl.export.keras and dl.from_keras need Keras 3: pip install keras "
                          "(and a backend: jax, tensorflow or torch)") from error
    return keras


def keras_layer(keras, layer):
    """The Keras layer of the same class and configuration as minidl's ``layer`` (weights not set)."""
    kind = type(layer).__name__
    if isinstance(layer, Model):   # a model used as a layer: exported whole, weights included
        return export_keras(layer)
    if kind == "Bidirectional":
        forward = keras_layer(keras, layer.forward_layer)
        return keras.layers.Bidirectional(forward, merge_mode=layer.merge_mode,
                                          backward_layer=keras_layer(keras, layer.backward_layer), name=layer.name)
    if kind == "TimeDistributed":
        return keras.layers.TimeDistributed(keras_layer(keras, layer.layer), name=layer.name)
    if not hasattr(keras.layers, kind):
        raise ExportError(f"dl.export.keras: layer '{layer.name}' ({kind}) has no Keras counterpart")
    config = {key: value for key, value in layer.get_config().items() if key not in _MINIDL_ONLY_KEYS}
    for key, value in config.items():
        if key.endswith("_regularizer") and value is not None:
            config[key] = keras.regularizers.get(value)   # minidl's {"class_name", "config"} is Keras' form
    try:
        return getattr(keras.layers, kind)(**config)
    except (TypeError, ValueError) as error:
        raise ExportError(f"dl.export.keras: layer '{layer.name}' ({kind}): Keras refused its configuration "
                          f"({error})") from error


def _functional_keras(keras, model):
    """A Keras functional model replaying ``model``'s graph: one Keras layer per minidl layer
    (a layer called twice is one Keras layer called twice: shared in Keras too)."""
    graph = model.graph
    tensors = {id(x): keras.Input(shape=tuple(x.shape[1:]), name=x.node.layer.name) for x in graph.inputs}
    counterparts: dict[int, tuple] = {}
    for node in graph.nodes:
        if not node.inputs:   # an InputLayer: its Keras Input is made above
            continue
        layer = node.layer
        if id(layer) not in counterparts:
            counterparts[id(layer)] = (layer, keras_layer(keras, layer))
        counterpart = counterparts[id(layer)][1]
        given = [tensors[id(x)] for x in node.inputs]
        try:
            out = counterpart(given if node.as_list else given[0], **node.kwargs)
        except (TypeError, ValueError) as error:
            raise ExportError(f"dl.export.keras: layer '{layer.name}' ({type(layer).__name__}): Keras refused "
                              f"the call ({error})") from error
        for x, value in zip(node.outputs, out if isinstance(out, (list, tuple)) else [out]):
            tensors[id(x)] = value
    inputs = [tensors[id(x)] for x in graph.inputs]
    outputs = [tensors[id(x)] for x in graph.outputs]
    keras_model = keras.Model(inputs[0] if model.single_input else inputs,
                              outputs[0] if model.single_output else outputs, name=model.name)
    for layer, counterpart in counterparts.values():
        if not isinstance(layer, Model):   # a nested model's weights are set by its own export
            counterpart.set_weights(layer.get_weights())
    return keras_model


def export_keras(model):
    """A ``keras.Sequential`` (for a Sequential) or a functional ``keras.Model`` with ``model``'s
    layers, graph and weights.

    Args:
        model: a built minidl Sequential or functional model (``dl.Model(inputs, outputs)``);
            a model used as a layer inside it is exported the same way.
    Returns:
        The Keras model, built for the model's input shapes (its inputs named as minidl's Input
        layers), weights set; ``save("x.keras")`` works.
    Raises:
        ExportError: a subclassed or unbuilt model, or a layer Keras has no class for.
        ImportError: Keras is not installed.
    """
    if not isinstance(model, Model):
        raise ExportError(f"dl.export.keras: exports Sequential and functional models; got {type(model).__name__}")
    if not isinstance(model, Sequential) and model.graph is None:
        raise ExportError(f"dl.export.keras: model '{model.name}' is subclassed: its call is Python code; build "
                          f"it as Model(inputs, outputs) to export it")
    if not model.built or model.built_input_shape is None or model.graph is None:
        raise ExportError(f"dl.export.keras: model '{model.name}' is not built; give its first layer an "
                          f"input shape (layers.Input(...)) or call it on data first")
    keras = keras_module()
    if not isinstance(model, Sequential):
        return _functional_keras(keras, model)
    pairs = [(layer, keras_layer(keras, layer)) for layer in model.layers if type(layer).__name__ != "InputLayer"]
    keras_model = keras.Sequential([keras.Input(shape=tuple(model.built_input_shape[1:]))]
                                   + [k for _, k in pairs], name=model.name)
    for layer, counterpart in pairs:
        if not isinstance(layer, Model):
            counterpart.set_weights(layer.get_weights())
    return keras_model
