"""``dl.export.keras``: a minidl Sequential as a real ``keras.Model``, same architecture, same weights.

    keras_model = dl.export.keras(model)        # a keras.Sequential
    keras_model.save("model.keras")             # Keras 3's own file; train on with JAX, TF or torch

minidl's layers take Keras' names, arguments and weight layouts, so each layer becomes the Keras
layer of the same class from its ``get_config()``, and its ``get_weights()`` load unchanged with
``set_weights``. Keras is imported only when this is called (it stays an optional extra).

Where the two differ (said in minidl's layer docstrings, repeated here because an exported model
meets them): minidl's Conv1D, ZeroPadding1D and 1-D pooling pass a mask on, and GlobalMaxPooling1D
leaves masked steps out; Keras drops the mask at those layers. A model with a Masking layer before
one of them (the digit CRNN) gives the same outputs in Keras on batches without padding, and
different ones on padded batches, where Keras' recurrent layer runs over the padded frames.
"""
from __future__ import annotations

from minidl.export.errors import ExportError

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


def export_keras(model):
    """A ``keras.Sequential`` with ``model``'s layers and weights.

    Args:
        model: a built minidl Sequential.
    Returns:
        keras.Sequential, built for the model's input shape, weights set; ``save("x.keras")`` works.
    Raises:
        ExportError: not a built Sequential, or a layer Keras has no class for.
        ImportError: Keras is not installed.
    """
    if type(model).__name__ != "Sequential":
        raise ExportError(f"dl.export.keras: exports Sequential models; got {type(model).__name__}")
    if not model.built or model.built_input_shape is None:
        raise ExportError(f"dl.export.keras: model '{model.name}' is not built; give its first layer an "
                          f"input shape (layers.Input(...)) or call it on data first")
    keras = keras_module()
    pairs = [(layer, keras_layer(keras, layer)) for layer in model.layers if type(layer).__name__ != "InputLayer"]
    keras_model = keras.Sequential([keras.Input(shape=tuple(model.built_input_shape[1:]))]
                                   + [k for _, k in pairs], name=model.name)
    for layer, counterpart in pairs:
        counterpart.set_weights(layer.get_weights())
    return keras_model
