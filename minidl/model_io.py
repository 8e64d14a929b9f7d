"""A model's architecture as JSON and back, and ``clone_model``: Keras' ``to_json``,
``model_from_json`` and ``clone_model``, without weights.

The JSON is ``{"format": "minidl", "class_name": ..., "config": model.get_config(),
"input_shape": ...}``; the class is found in the registry of models by name and every layer in
the registry of layers (``minidl.layers.serialization``), so reading JSON never runs its code.
"""
from __future__ import annotations

import json

from minidl.layers.serialization import MODELS, check_config_numbers, short_repr


def model_to_json(model) -> str:
    """The architecture of ``model`` (a functional model or a Sequential) as a JSON string."""
    shape = getattr(model, "built_input_shape", None)
    return json.dumps({"format": "minidl", "class_name": type(model).__name__, "config": model.get_config(),
                       "input_shape": None if shape is None else list(shape)})


def model_from_json(json_string: str, custom_objects: dict | None = None):
    """A new model with the architecture of ``model.to_json()``, freshly initialised weights.

    Args:
        json_string: what ``to_json`` wrote.
        custom_objects: not supported (minidl builds only registered classes); must be None.
    Raises:
        ValueError: not such JSON, an unknown model or layer class, a size beyond the bounds of
            ``check_config_numbers``.
    """
    if custom_objects:
        raise ValueError("model_from_json: custom_objects is not supported in minidl; every Layer subclass is "
                         "registered by its class name when it is defined")
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
