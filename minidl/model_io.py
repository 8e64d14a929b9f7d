"""A model's architecture as JSON and back, and ``clone_model``: Keras' ``to_json``,
``model_from_json`` and ``clone_model``, without weights.

The JSON is ``{"format": "minidl", "class_name": ..., "config": model.get_config(),
"input_shape": ...}``; the class is found in the registry of models by name and every layer in
the registry of layers (``minidl.layers.serialization``), so reading JSON never runs its code.

A subclassed model's architecture is its Python class: it is written only when that class is
registered (``register_serializable``) and has a ``get_config`` of its constructor arguments;
the JSON then says ``"subclassed": true`` and holds the input shapes of its first call, in
their structure (one, a list, a dict), and is rebuilt as ``cls(**config)`` plus a trial call on
zeros of those shapes. ``custom_objects`` adds classes by name while a model is rebuilt.
"""
from __future__ import annotations

import contextlib
import json
from typing import Iterator

from minidl import backend
from minidl.function import no_grad
from minidl.layers.base import Layer
from minidl.layers.serialization import LAYERS, MODELS, check_config_numbers, short_repr
from minidl.layers.symbolic import TRIAL_LENGTHS, shape_trial
from minidl.tensor import Tensor


def check_savable(model, where: str) -> None:
    """Refuse a subclassed model whose class is not registered or has no get_config of its own.

    Raises:
        NotImplementedError: saying what to add.
    """
    if not getattr(model, "is_subclassed", False):
        return
    cls = type(model)
    if MODELS.get(cls.__name__) is not cls or cls.get_config is getattr(MODELS.get("Model"), "get_config", None):
        raise NotImplementedError(
            f"{where}: model '{model.name}' is subclassed ({cls.__name__}): saving its architecture needs "
            f"the class registered (@dl.saving.register_serializable(), Keras' register_keras_serializable) "
            f"and a get_config() returning its constructor arguments; save_weights() works without")
    if getattr(model, "subclass_input_shapes", None) is None:
        raise NotImplementedError(f"{where}: subclassed model '{model.name}' has not been called yet, so its "
                                  f"input shapes are unknown; call it on a batch first")


def architecture(model, where: str) -> dict:
    """The document entries naming ``model``'s architecture: class_name, config, input_shape,
    and for a registered subclassed model "subclassed" and its "input_shapes"."""
    check_savable(model, where)
    shape = getattr(model, "built_input_shape", None)
    entries = {"class_name": type(model).__name__, "config": model.get_config(),
               "input_shape": None if shape is None else list(shape)}
    if getattr(model, "is_subclassed", False):
        shapes = model.subclass_input_shapes
        entries["subclassed"] = True
        entries["input_shapes"] = ({k: list(v) for k, v in shapes.items()} if isinstance(shapes, dict)
                                   else [list(v) for v in shapes] if isinstance(shapes, list) else list(shapes))
    return entries


def rebuild_subclassed(cls, config: dict, input_shapes):
    """A registered subclassed model ``cls(**config)``, built by one call on zeros (batch 1) of
    ``input_shapes`` (a shape, a list of them or a dict), as saved by ``architecture``."""
    if not isinstance(cls, type) or getattr(cls, "call", None) is Layer.call:
        raise ValueError(f"{short_repr(cls)} is not a subclassed model class")
    try:
        model = cls.from_config(config)
    except TypeError as error:
        raise ValueError(f"cannot rebuild {cls.__name__} from its config {short_repr(config)}: {error}") from None

    def zeros(shape):
        if not isinstance(shape, list) or not all(n is None or (isinstance(n, int) and n >= 0) for n in shape):
            raise ValueError(f"the input shapes of {cls.__name__} must be lists of ints or nulls, got "
                             f"{short_repr(input_shapes)}")
        dims = [1] + [TRIAL_LENGTHS[0] if n is None else n for n in shape[1:]]
        return Tensor(backend.xp_default().zeros(dims, dtype=model.dtype))

    if isinstance(input_shapes, dict):
        trial = {key: zeros(shape) for key, shape in input_shapes.items()}
    elif isinstance(input_shapes, list) and input_shapes and isinstance(input_shapes[0], list):
        trial = [zeros(shape) for shape in input_shapes]
    else:
        trial = zeros(input_shapes)
    with no_grad(), shape_trial():
        model(trial)
    return model


@contextlib.contextmanager
def custom_classes(custom_objects: dict | None, where: str) -> Iterator[None]:
    """The Layer and Model classes among ``custom_objects`` known by their given names while a
    model is rebuilt (entries that are not classes, such as loss functions, are left to compile).

    Raises:
        ValueError: a name that is minidl's own class, given another class.
    """
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise ValueError(f"{where}: custom_objects must be a dict {{name: class}}, got "
                         f"{type(custom_objects).__name__}")
    added_layers, added_models = {}, {}
    for name, value in (custom_objects or {}).items():
        if isinstance(value, type) and issubclass(value, Layer):
            if LAYERS.get(name) not in (None, value):
                raise ValueError(f"{where}: custom_objects names {name!r}, which is minidl's own "
                                 f"{LAYERS[name].__name__}")
            added_layers[name] = value
            if hasattr(value, "from_saved_layers"):
                added_models[name] = value
    previous = [(table, name, table.get(name)) for table, added in ((LAYERS, added_layers), (MODELS, added_models))
                for name in added]
    LAYERS.update(added_layers)
    MODELS.update(added_models)
    try:
        yield
    finally:
        for table, name, value in previous:
            if value is None:
                del table[name]
            else:
                table[name] = value


def model_to_json(model) -> str:
    """The architecture of ``model`` (a functional model, a Sequential, or a registered
    subclassed model with get_config) as a JSON string."""
    return json.dumps({"format": "minidl", **architecture(model, "to_json")})


def model_from_json(json_string: str, custom_objects: dict | None = None):
    """A new model with the architecture of ``model.to_json()``, freshly initialised weights.

    Args:
        json_string: what ``to_json`` wrote.
        custom_objects: {name in the JSON: class} for layer or model classes it names that are
            not registered under that name (every Layer subclass is, by its class name).
    Raises:
        ValueError: not such JSON, an unknown model or layer class, a size beyond the bounds of
            ``check_config_numbers``.
    """
    with custom_classes(custom_objects, "model_from_json"):
        return _from_json(json_string)


def _from_json(json_string: str):
    try:
        document = json.loads(json_string)
    except (TypeError, ValueError) as error:
        raise ValueError(f"model_from_json: not JSON ({error})") from None
    if not isinstance(document, dict) or document.get("format") != "minidl" \
            or not isinstance(document.get("config"), dict):
        raise ValueError(f"model_from_json: expected the JSON of model.to_json(), got {short_repr(document)}")
    cls = MODELS.get(document.get("class_name"))
    if cls is None:
        raise ValueError(f"model_from_json: unknown model class {short_repr(document.get('class_name'))}; "
                         f"known: {', '.join(sorted(MODELS))}")
    check_config_numbers(document["config"], "config")
    if document.get("subclassed"):
        return rebuild_subclassed(cls, document["config"], document.get("input_shapes"))
    model = cls.from_config(document["config"])
    shape = document.get("input_shape")
    if isinstance(shape, list) and not model.built:
        model.build(tuple(shape))
    return model


def clone_model(model):
    """A new model of the same architecture and layer names, with newly initialised weights
    (Keras' ``clone_model``); weights are copied by ``clone.set_weights(model.get_weights())``.

    Raises:
        NotImplementedError: a subclassed model, whose architecture is its Python code.
    """
    return model_from_json(model_to_json(model))
