"""``dl.from_keras``: a minidl model built from a Keras model (or a ``.keras`` file).

    model = dl.from_keras("model.keras")        # or dl.from_keras(keras_model)

Each Keras layer becomes minidl's layer of the same class name, from the Keras layer's
``get_config()``: the arguments minidl has are passed on; those it lacks are dropped when they
hold Keras' default, so they change nothing (constraints None, ``recurrent_dropout`` 0,
``stateful`` False, ...), and refused otherwise, naming the layer, the argument and its value.
Initialisers are not carried over (the weights are), and weights load unchanged, as the layouts
are Keras'. Masks differ at Conv1D and 1-D pooling (see keras_export.py).

A functional Keras model is read from its ``get_config()``: each layer's ``inbound_nodes`` name
the tensors each call took, as (layer, node, output), and the calls are replayed on minidl's
``Input``s in an order where every tensor is made before it is used (a shared layer's second
call may need a layer Keras lists after it). The minidl model's graph, and so its layer and
weight order, is then Keras' own.
"""
from __future__ import annotations

import inspect
import os

from minidl import layers as minidl_layers
from minidl.export.keras_export import keras_module
from minidl.export.errors import ExportError
from minidl.models import Model, Sequential

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


def _keras_tensor_ref(value):
    """The (layer, node, output) a Keras config names for a tensor, or None for anything else."""
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        return tuple(value["config"]["keras_history"])
    return None


def _is_mask_op(entry: dict) -> bool:
    """Whether a config entry is a Keras op (keras.ops.not_equal, ...), not a layer: Keras records
    the ops that compute masks (Masking's "any feature differs") in a functional model's config."""
    return str(entry.get("module", "")).startswith("keras.src.ops")


def _node_call(keras_name: str, node: dict) -> tuple[object, dict]:
    """(the tensor or list of tensors a Keras node was called on, as refs; its call arguments)."""
    args, kwargs = node.get("args", []), dict(node.get("kwargs", {}))
    where = f"dl.from_keras: layer '{keras_name}'"
    first = args[0] if args else None
    refs = [_keras_tensor_ref(v) for v in first] if isinstance(first, list) else _keras_tensor_ref(first)
    if len(args) != 1 or refs is None or (isinstance(refs, list) and None in refs):
        raise ExportError(f"{where} is called on {len(args)} positional arguments or on something other than "
                          f"tensors; minidl replays calls on one tensor or one list of tensors")
    # mask=: Keras writes the mask it propagated as an argument of the call (computed by the ops
    # it records beside the layers); minidl propagates the same masks itself, by the same rules
    kwargs = {key: value for key, value in kwargs.items() if value is not None and key != "mask"}
    unknown = sorted(set(kwargs) - {"training"})
    if unknown:
        raise ExportError(f"{where} is called with {', '.join(unknown)}, which minidl does not replay")
    return refs, kwargs


def _functional_from_keras(model) -> Model:
    """A minidl functional model replaying a Keras functional model's graph (its config's nodes)."""
    config = model.get_config()
    made: dict[tuple, list] = {}     # (layer name, node number) -> the minidl symbolic outputs
    pending, pairs = [], []
    entries = [entry for entry in config["layers"] if not _is_mask_op(entry)]
    ops = {entry["name"]: entry["class_name"] for entry in config["layers"] if _is_mask_op(entry)}
    for entry in entries:
        for node in entry["inbound_nodes"]:
            first = node.get("args", [None])[0] if node.get("args") else None
            for ref in (first if isinstance(first, list) else [first]):
                ref = _keras_tensor_ref(ref)
                if ref is not None and ref[0] in ops:
                    raise ExportError(f"dl.from_keras: layer '{entry['name']}' is called on the result of the "
                                      f"op '{ref[0]}' ({ops[ref[0]]}); minidl builds models of layers only "
                                      f"(wrap the computation in a layer)")
    for entry in entries:
        keras_layer = model.get_layer(entry["name"])
        if type(keras_layer).__name__ == "InputLayer":
            made[(keras_layer.name, 0)] = [minidl_layers.Input(tuple(keras_layer.batch_shape[1:]),
                                                               name=keras_layer.name)]
            continue
        layer = minidl_layer(keras_layer)
        pairs.append((keras_layer, layer))
        pending += [(layer, number, *_node_call(keras_layer.name, node))
                    for number, node in enumerate(entry["inbound_nodes"])]

    def tensor(ref):
        return made[(ref[0], ref[1])][ref[2]]

    while pending:   # a shared layer's later call may need layers listed after it: call what is ready
        ready = [call for call in pending if all((r[0], r[1]) in made for r in
                                                 (call[2] if isinstance(call[2], list) else [call[2]]))]
        if not ready:
            raise ExportError(f"dl.from_keras: model '{model.name}': the calls of "
                              f"{', '.join(sorted({call[0].name for call in pending}))} need tensors no layer makes")
        for call in ready:
            layer, number, refs, kwargs = call
            out = layer([tensor(r) for r in refs] if isinstance(refs, list) else tensor(refs), **kwargs)
            made[(layer.name, number)] = list(out) if isinstance(out, (list, tuple)) else [out]
            pending.remove(call)

    def output(ref):
        if ref[0] in ops:
            raise ExportError(f"dl.from_keras: model '{model.name}': an output is made by the op '{ref[0]}' "
                              f"({ops[ref[0]]}); minidl builds models of layers only")
        return tensor(ref)

    def structure(refs):   # Keras writes one [name, node, output] for a model of one tensor
        return output(refs) if refs and isinstance(refs[0], str) else [output(ref) for ref in refs]

    result = Model(structure(config["input_layers"]), structure(config["output_layers"]), name=model.name)
    for keras_layer, layer in pairs:
        layer.set_weights(list(keras_layer.get_weights()))
    return result


def from_keras(model_or_path) -> Model:
    """A minidl model with the layers, graph and weights of a Keras model.

    Args:
        model_or_path: a keras.Sequential or a functional keras.Model (``keras.Model(inputs,
            outputs)``), or the path of a ``.keras`` file holding one.
    Returns:
        A built minidl Sequential (for a keras.Sequential) or functional Model whose outputs
        match Keras' (within float32 rounding); the inputs keep their Keras names.
    Raises:
        ExportError: a subclassed Keras model, a layer minidl lacks, an argument it does not
            support, or a call it cannot replay.
        ImportError: Keras is not installed.
    """
    keras = keras_module()
    model = model_or_path
    if isinstance(model_or_path, (str, os.PathLike)):
        model = keras.saving.load_model(os.fspath(model_or_path))
    if isinstance(model, keras.Model) and not isinstance(model, keras.Sequential) \
            and type(model).__name__ == "Functional":
        return _functional_from_keras(model)
    if not isinstance(model, keras.Sequential):
        raise ExportError(f"dl.from_keras: imports keras.Sequential and functional keras.Model models; got "
                          f"{type(model).__name__} '{getattr(model, 'name', '?')}' (a subclassed model's call "
                          f"is Python code, which cannot be read back)")
    pairs = [(keras_layer, minidl_layer(keras_layer)) for keras_layer in model.layers]
    shape = tuple(model.inputs[0].shape[1:])
    result = Sequential([minidl_layers.Input(shape)] + [layer for _, layer in pairs], name=model.name)
    for keras_layer, layer in pairs:
        layer.set_weights([w for w in keras_layer.get_weights()])
    return result
