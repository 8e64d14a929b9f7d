"""Layers to and from JSON: the registries of layer and model classes by name, and the two
functions that turn a layer into ``{"class_name": ..., "config": ...}`` and back.

    Dense(3, activation="tanh")  ──serialize_layer──►  {"class_name": "Dense",
                                 ◄─deserialize_layer─   "config": {"units": 3, "activation": "tanh", ...}}

Every ``Layer`` subclass enters ``LAYERS`` under its class name when it is defined (Layer's
``__init_subclass__``); model classes (``Sequential``) also enter ``MODELS`` by the
``register_model`` decorator, which is how ``minidl.saving`` finds them without importing
``minidl.models``. A config only names a registered class and gives its constructor
arguments, so rebuilding a layer from a file can never run code of the file's own.

This file imports nothing from minidl: the layers and models above it fill its registries.
"""
from __future__ import annotations

from typing import Any, TypeVar

LAYERS: dict[str, type] = {}   # class name -> Layer subclass; filled by Layer.__init_subclass__
MODELS: dict[str, type] = {}   # class name -> model class; filled by register_model
MAX_DEPTH = 32  # nested wrapper layers; a config nesting deeper is refused, not recursed into

ModelClass = TypeVar("ModelClass", bound=type)


def register_model(cls: ModelClass) -> ModelClass:
    """Class decorator: let ``minidl.saving.load_model`` rebuild models of this class by name.

    The class must take ``(layers, name=...)``, as Sequential does; it is also a Layer, so it is
    in LAYERS already (a Sequential may be nested inside another).
    """
    MODELS[cls.__name__] = cls
    return cls


def is_layer(value: Any) -> bool:
    """Whether ``value`` is an instance of a registered layer class (every Layer subclass is)."""
    return not isinstance(value, dict) and isinstance(value, tuple(LAYERS.values()))


def serialize_layer(layer) -> dict:
    """``{"class_name": ..., "config": layer.get_config()}``: what deserialize_layer reads back."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize_layer(entry, depth: int = 0):
    """A layer rebuilt from ``{"class_name": name, "config": {...}}``.

    The class must be registered (every Layer subclass is, by class name); the config gives the
    constructor arguments. A nested ``{"class_name", "config"}`` under the key "layer" (the
    wrapped layer of Bidirectional, TimeDistributed) is rebuilt first, and so is each entry of
    a "layers" list (a Sequential nested as a layer). A layer given instead of a dict is
    returned as is, so wrappers may call this on either.

    Args:
        entry: the dict (as from ``json.loads``), or a layer.
        depth: how deep this call is in nested configs; callers leave it at 0.
    Raises:
        ValueError: not such a dict, nested deeper than MAX_DEPTH, an unknown class name (the
            message lists the known ones), or arguments the class does not accept.
    """
    if is_layer(entry):
        return entry
    if depth > MAX_DEPTH:
        raise ValueError(f"layer config nested deeper than {MAX_DEPTH} levels")
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str) \
            or not isinstance(entry.get("config", {}), dict):
        raise ValueError(f"a layer entry must be {{'class_name': str, 'config': dict}}, got {short_repr(entry)}")
    name = entry["class_name"]
    cls = LAYERS.get(name)
    if cls is None:
        raise ValueError(f"unknown layer class {name!r}; known layers: {', '.join(sorted(LAYERS))}")
    config = dict(entry.get("config", {}))
    nested = config.get("layer")
    if isinstance(nested, dict) and "class_name" in nested:
        config["layer"] = deserialize_layer(nested, depth + 1)
    if isinstance(config.get("layers"), list):  # a Sequential nested as a layer
        config["layers"] = [deserialize_layer(e, depth + 1) for e in config["layers"]]
    try:
        return cls.from_config(config)
    except Exception as error:  # any failure of a constructor is a bad file, said plainly
        raise ValueError(f"cannot rebuild layer {name} from its config {short_repr(config)}: {error}") from error


def short_repr(value: Any, limit: int = 200) -> str:
    """``repr(value)``, cut to ``limit`` characters: a config quoted in an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
