"""What a saved model needs beyond its weights to resume training exactly: the compile settings,
the optimizer's slots and step count, and ``dl.random``'s state.

``minidl.saving`` writes these into the model file's JSON document (version 2) and its
``optimizer_0000 ...`` arrays, and reads them back through the functions here. A file is
untrusted: everything is rebuilt from names, by the registries of optimizers, losses and
metrics, or from the caller's ``custom_objects``; no name in a file can reach anything else.

    "compile": {"optimizer": {"class_name": "Adam", "config": {...}},
                "loss": {"name": "sparse_categorical_crossentropy", "options": {}, "builtin": true},
                "metrics": ["accuracy", {"custom": "my_metric"}], "terminate_on_nan": true}
                (several outputs: "loss" and "metrics" are lists in output order, a loss may be
                null, and "loss_weights" is the list of their weights)
    "optimizer_state": {"iterations": 120, "calls": 240, "slots": [[0, "momentum"], [0, "velocity"], ...]}
                        (slot k is the array optimizer_000k; its first number indexes model.weights;
                        "calls" counts apply() calls, iterations·n plus those accumulated since the
                        last update under gradient_accumulation_steps n; files without it have
                        calls = iterations·n)

Every other piece of state the optimizer options keep is a slot or follows from the step count:
use_ema's moving averages ("average") and gradient_accumulation_steps' sums
("accumulated_gradient") are slots; Nadam's product Π_t is recomputed from iterations on restore.
    "random_state": minidl.random.get_state()
"""
from __future__ import annotations

import inspect
import json
import warnings
from typing import Any

import numpy as np

from minidl import backend, losses, metrics as metrics_module, optimizers, random
from minidl.layers.serialization import short_repr

MAX_ITERATIONS = 2 ** 53  # an optimizer's step count, kept exact by JSON readers that use floats


# --- writing ------------------------------------------------------------------------------------
def _callable_name(value) -> str:
    return getattr(value, "__name__", type(value).__name__)


def _loss_entry(loss) -> dict | None:
    function = getattr(loss.fn, "func", loss.fn)  # a Loss with options holds functools.partial
    return {"name": loss.name, "options": dict(loss.options), "builtin": losses.LOSSES.get(loss.name) is function}


def _metric_entries(entries) -> list:
    return [m if isinstance(m, str) else {"custom": _callable_name(m)} for m in entries]


def compile_config(model) -> dict | None:
    """The settings ``model.compile`` was given, JSON-able; None for a model not compiled, or one
    whose settings this format cannot write (a warning says which). A model of several outputs
    gets a list of losses (None for an output without one), its loss_weights, and a list of
    metric lists, in output order."""
    loss = getattr(model, "loss", None)
    if loss is None or getattr(model, "optimizer", None) is None:
        return None
    compiled = getattr(model, "compiled", None)
    several = compiled is not None and compiled.several
    for each in (loss if several else [loss]):
        if each is not None and not isinstance(each, losses.Loss):
            warnings.warn(f"saving: the compile settings are left out, since loss {short_repr(each, 60)} is not "
                          f"one minidl.losses.Loss; the loaded model needs compile() again", stacklevel=3)
            return None
    config = {"optimizer": optimizers.serialize(model.optimizer),
              "terminate_on_nan": bool(getattr(model, "terminate_on_nan", True))}
    if several:
        config.update(loss=[None if each is None else _loss_entry(each) for each in loss],
                      loss_weights=list(compiled.loss_weights),
                      metrics=[_metric_entries(entries) for entries in compiled.metric_entries])
    else:
        given = compiled.metric_entries[0] if compiled is not None else model.metric_names
        config.update(loss=_loss_entry(loss), metrics=_metric_entries(given))
    try:
        json.dumps(config, allow_nan=True)
    except (TypeError, ValueError) as error:  # e.g. a loss option that is an array
        warnings.warn(f"saving: the compile settings are left out, as they are not JSON-able ({error}); "
                      f"the loaded model needs compile() again", stacklevel=3)
        return None
    return config


def optimizer_state(model) -> tuple[dict | None, list[np.ndarray]]:
    """(the document's "optimizer_state", the slot arrays in order); (None, []) uncompiled."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not hasattr(optimizer, "get_state"):
        return None, []
    iterations, slots = optimizer.get_state(model.weights)
    arrays = [np.asarray(backend.to_numpy(array)) for _, _, array in slots]
    return {"iterations": int(iterations), "calls": int(optimizer.calls),
            "slots": [[index, name] for index, name, _ in slots]}, arrays


# --- reading ------------------------------------------------------------------------------------
def _lookup(name: str, custom_objects: dict | None, what: str):
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    raise ValueError(f"the {what} {short_repr(name, 60)} is not minidl's; pass it to load_model as "
                     f"custom_objects={{{name!r}: ...}}, or load with compile=False")


def _optimizer(entry, custom_objects):
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str) \
            or not isinstance(entry.get("config", {}), dict):
        raise ValueError(f"compile.optimizer must be {{'class_name': str, 'config': dict}}, got {short_repr(entry)}")
    name, config = entry["class_name"], entry.get("config", {})
    if custom_objects and name in custom_objects:
        cls = custom_objects[name]
        return cls.from_config(config) if hasattr(cls, "from_config") else cls(**config)
    if name.lower() not in optimizers.OPTIMIZERS:
        _lookup(name, custom_objects, "optimizer")
    return optimizers.get({"class_name": name, "config": config})


def _loss(entry, custom_objects):
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) \
            or not isinstance(entry.get("options", {}), dict):
        raise ValueError(f"compile.loss must be {{'name': str, 'options': dict, 'builtin': bool}}, got "
                         f"{short_repr(entry)}")
    name, options = entry["name"], entry.get("options", {})
    if entry.get("builtin") and name in losses.LOSSES:
        function = losses.LOSSES[name]
        accepted = set(inspect.signature(function).parameters) - {"y_true", "y_pred"}
        unknown = sorted(set(options) - accepted)
        if unknown or not all(isinstance(v, (bool, int, float, str)) for v in options.values()):
            raise ValueError(f"compile.loss options {short_repr(options)} are not options of {name} "
                             f"({', '.join(sorted(accepted)) or 'none'})")
        return losses.Loss(function, name, **options)
    return losses.get(_lookup(name, custom_objects, "loss"))


def _metrics(entries, custom_objects) -> list:
    if not isinstance(entries, list):
        raise ValueError(f"compile.metrics must be a list, got {short_repr(entries)}")
    metrics = []
    for entry in entries:
        if isinstance(entry, str):
            metrics.append(entry)
        elif isinstance(entry, dict) and isinstance(entry.get("custom"), str):
            metrics.append(_lookup(entry["custom"], custom_objects, "metric"))
        else:
            raise ValueError(f"compile.metrics entries must be names or {{'custom': name}}, got {short_repr(entry)}")
    return metrics


def compile_from_config(model, config: dict, custom_objects: dict | None) -> None:
    """``model.compile(...)`` with the settings of ``compile_config``.

    Raises:
        ValueError: a part of ``config`` that is not what compile_config writes, or a name
            that is neither minidl's nor in ``custom_objects`` (saying so).
    """
    if not isinstance(config, dict):
        raise ValueError(f"'compile' must be a dict, got {short_repr(config)}")
    terminate_on_nan = config.get("terminate_on_nan", True)
    if not isinstance(terminate_on_nan, bool):
        raise ValueError(f"compile.terminate_on_nan must be true or false, got {short_repr(terminate_on_nan)}")
    optimizer = _optimizer(config.get("optimizer"), custom_objects)
    if isinstance(config.get("loss"), list):  # a model of several outputs
        return _compile_several(model, config, optimizer, terminate_on_nan, custom_objects)
    loss = _loss(config.get("loss"), custom_objects)
    metrics = _metrics(config.get("metrics", []), custom_objects)
    for metric in metrics:
        metrics_module.resolve(metric, loss.name)  # an unknown metric name fails here, by name
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, terminate_on_nan=terminate_on_nan)


def _compile_several(model, config: dict, optimizer, terminate_on_nan: bool, custom_objects) -> None:
    """compile_from_config for the per-output lists of a model of several outputs."""
    entries, weights, metrics = config["loss"], config.get("loss_weights"), config.get("metrics", [])
    if not isinstance(metrics, list) or len(metrics) != len(entries) or not isinstance(weights, list) \
            or len(weights) != len(entries) or not all(isinstance(w, (int, float)) and not isinstance(w, bool)
                                                        for w in weights):
        raise ValueError(f"compile: {len(entries)} losses need as many loss_weights (numbers) and metric lists, "
                         f"got {short_repr(weights)} and {short_repr(metrics)}")
    loss = [None if entry is None else _loss(entry, custom_objects) for entry in entries]
    metrics = [_metrics(each, custom_objects) for each in metrics]
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, loss_weights=weights,
                  terminate_on_nan=terminate_on_nan)


def check_optimizer_state(state: Any, num_slots: int, weight_shapes: list[tuple], slot_shapes: list[tuple],
                          optimizer=None) -> int:
    """The step count of a document's "optimizer_state", after checking it against the file's
    ``num_slots`` optimizer arrays (their ``slot_shapes``, from the headers), the model's
    ``weight_shapes`` and, when given, the ``optimizer`` it is for (its calls must make its
    iterations with the optimizer's gradient_accumulation_steps); no data is read.

    Raises:
        ValueError: naming what does not fit.
    """
    if not isinstance(state, dict) or not isinstance(state.get("slots"), list):
        raise ValueError(f"optimizer_state must be {{'iterations': int, 'slots': list}}, got {short_repr(state)}")
    iterations = state.get("iterations")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or not 0 <= iterations < MAX_ITERATIONS:
        raise ValueError(f"optimizer_state.iterations must be an int in [0, 2**53), got {short_repr(iterations, 40)}")
    calls = state.get("calls", iterations)
    if isinstance(calls, bool) or not isinstance(calls, int) or not iterations <= calls < MAX_ITERATIONS:
        raise ValueError(f"optimizer_state.calls must be an int in [iterations, 2**53), got {short_repr(calls, 40)}")
    steps = (getattr(optimizer, "gradient_accumulation_steps", None) or 1) if optimizer is not None else None
    if steps is not None and "calls" in state and calls // steps != iterations:
        raise ValueError(f"optimizer_state: calls {calls} with gradient_accumulation_steps {steps} make "
                         f"{calls // steps} updates, but iterations is {iterations}")
    slots = state["slots"]
    if len(slots) != num_slots:
        raise ValueError(f"optimizer_state lists {len(slots)} slots, the file holds {num_slots} optimizer arrays")
    for k, (entry, shape) in enumerate(zip(slots, slot_shapes)):
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], int)
                and not isinstance(entry[0], bool) and isinstance(entry[1], str) and len(entry[1]) <= 100):
            raise ValueError(f"optimizer_state.slots[{k}] must be [weight index, slot name], got {short_repr(entry)}")
        index = entry[0]
        if not 0 <= index < len(weight_shapes):
            raise ValueError(f"optimizer_state.slots[{k}] names weight {index}; the model has {len(weight_shapes)}")
        if tuple(shape) != tuple(weight_shapes[index]):
            raise ValueError(f"optimizer_{k:04d} has shape {tuple(shape)}, but weight {index} has shape "
                             f"{tuple(weight_shapes[index])}")
    return iterations


def restore_optimizer(model, state: dict, arrays: list[np.ndarray]) -> None:
    """Give the compiled ``model``'s optimizer the checked ``state`` and its slot ``arrays``.

    Raises:
        ValueError: "calls" that do not make "iterations" updates with the optimizer's
            gradient_accumulation_steps.
    """
    slots = [(index, name, array) for (index, name), array in zip(state["slots"], arrays)]
    model.optimizer.set_state(model.weights, state["iterations"], slots, calls=state.get("calls"))


def restore_random(state: Any) -> None:
    """``dl.random`` where it was at the save (ValueError for a state it cannot take)."""
    random.set_state(state)
