"""``dl.from_keras``: a minidl Sequential built from a Keras model (or a ``.keras`` file).

    model = dl.from_keras("model.keras")        # or dl.from_keras(keras_model)

Each Keras layer becomes minidl's layer of the same class name, from the Keras layer's
``get_config()``: the arguments minidl has are passed on; those it lacks are dropped when they
hold Keras' default, so they change nothing (constraints None, ``recurrent_dropout`` 0,
``stateful`` False, ...), and refused otherwise, naming the layer, the argument and its value.
Initialisers are not carried over (the weights are), and weights load unchanged, as the layouts
are Keras'. Masks differ at Conv1D and 1-D pooling (see keras_export.py).
"""
from __future__ import annotations

import inspect
import os

from minidl import layers as minidl_layers
from minidl.export.keras_export import keras_module
from minidl.export.errors import ExportError
from minidl.models import Sequential

# Keras arguments minidl does not have, with the values at which they change nothing.
HARMLESS = {
    "kernel_constraint": (None,), "bias_constraint": (None,), "recurrent_constraint": (None,),
    "beta_constraint": (None,), "gamma_constraint": (None,), "activity_regularizer": (None,),
    "recurrent_regularizer": (None,), "kernel_regularizer": (None,), "bias_regularizer": (None,),
    "recurrent_dropout": (0, 0.0), "stateful": (False,),
    "unroll": (False,), "groups": (1,), "rms_scaling": (False,), "synchronized": (False,),
    "quantization_config": (None,), "lora_rank": (None,), "lora_alpha": (None,),
    "renorm": (False,), "renorm_clipping": (None,), "renorm_momentum": (0.99,),
    "data_format": ("channels_last", None),   # where minidl has no such argument (Flatten): its only layout
}
# Keras arguments that never change the outputs of a model minidl builds from it.
IGNORED = ("dtype", "seed", "use_cudnn", "implementation", "time_major", "autocast")


def _accepted(cls) -> set[str]:
    """The constructor arguments of a minidl layer class and its bases."""
    names = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names |= {p.name for p in inspect.signature(klass.__init__).parameters.values()
                      if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)} - {"self"}
    return names


def minidl_layer(keras_layer):
    """minidl's layer for one Keras layer (weights not set)."""
    kind = type(keras_layer).__name__
    where = f"dl.from_keras: layer '{keras_layer.name}' ({kind})"
    if kind == "Bidirectional":
        return minidl_layers.Bidirectional(minidl_layer(keras_layer.forward_layer), merge_mode=keras_layer.merge_mode,
                                           backward_layer=minidl_layer(keras_layer.backward_layer),
                                           name=keras_layer.name)
    if kind == "TimeDistributed":
        return minidl_layers.TimeDistributed(minidl_layer(keras_layer.layer), name=keras_layer.name)
    cls = minidl_layers.LAYERS.get(kind)
    if cls is None or kind in ("Sequential", "InputLayer"):
        raise ExportError(f"{where} has no minidl counterpart; minidl has {', '.join(sorted(minidl_layers.LAYERS))}")
    accepted = _accepted(cls)
    config = {}
    for key, value in keras_layer.get_config().items():
        if key in IGNORED or key.endswith("_initializer"):
            continue   # the weights are copied; initialisers only matter for new weights
        if key in accepted:
            config[key] = value
        elif key in HARMLESS and value in HARMLESS[key]:
            continue
        else:
            raise ExportError(f"{where}: argument {key}={value!r} is not supported by minidl")
    try:
        return cls(**config)
    except (TypeError, ValueError) as error:
        raise ExportError(f"{where} cannot be built in minidl: {error}") from error


def from_keras(model_or_path) -> Sequential:
    """A minidl Sequential with the layers and weights of a Keras model.

    Args:
        model_or_path: a keras.Sequential, or the path of a ``.keras`` file holding one.
    Returns:
        A built minidl Sequential whose outputs match Keras' (within float32 rounding).
    Raises:
        ExportError: not a Sequential, a layer minidl lacks, or an argument it does not support.
        ImportError: Keras is not installed.
    """
    keras = keras_module()
    model = model_or_path
    if isinstance(model_or_path, (str, os.PathLike)):
        model = keras.saving.load_model(os.fspath(model_or_path))
    if not isinstance(model, keras.Sequential):
        raise ExportError(f"dl.from_keras: imports keras.Sequential models; got {type(model).__name__} "
                          f"'{getattr(model, 'name', '?')}'")
    pairs = [(keras_layer, minidl_layer(keras_layer)) for keras_layer in model.layers]
    shape = tuple(model.inputs[0].shape[1:])
    result = Sequential([minidl_layers.Input(shape)] + [layer for _, layer in pairs], name=model.name)
    for keras_layer, layer in pairs:
        layer.set_weights([w for w in keras_layer.get_weights()])
    return result
