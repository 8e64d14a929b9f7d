"""Saving and loading models: one ``.npz`` of weight arrays plus a JSON config, never pickle.

A model file is an ordinary NumPy ``.npz`` archive:

    weight_0000, weight_0001, ...   the weights, in ``model.get_weights()`` order (Keras' order)
    config                          uint8 array holding UTF-8 JSON:
                                    {"format": "minidl", "version": 1, "class_name": "Sequential",
                                     "model": model.get_config(), "input_shape": [null, 20],
                                     "metadata": {...}}

Loading reads it with ``allow_pickle=False`` and rebuilds each layer from its class name by the
registry of known layers (``minidl.layers.serialization``) with the JSON arguments, so a model
file can never run code of its own; the model class (Sequential) comes from the same file's
registry of models, so this file never imports ``minidl.models`` (which imports it). Every problem (not an npz, an object array, a missing or
garbled config, an unknown layer, a wrong number or shape of weights) is a ValueError naming
the file and the problem.

Writes go to a temporary file in the destination folder, then ``os.replace`` puts it in place
in one step: a save killed half-way leaves the previous file whole.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile

import numpy as np

# serialize_layer is not used here: it stays importable from minidl.saving, where it lived before
from minidl.layers.serialization import MODELS, deserialize_layer, serialize_layer, short_repr  # noqa: F401

FORMAT = "minidl"
WEIGHTS_FORMAT = "minidl-weights"
VERSION = 1


# --- writing ------------------------------------------------------------------------------------
def _json_bytes(document: dict, what: str, path) -> np.ndarray:
    try:
        text = json.dumps(document, allow_nan=True)
    except (TypeError, ValueError) as error:
        raise ValueError(f"saving {os.fspath(path)!r}: {what} must be JSON-able (dicts, lists, str, "
                         f"numbers, bools, None): {error}") from None
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _weight_arrays(model, path) -> dict[str, np.ndarray]:
    arrays = {}
    for i, value in enumerate(model.get_weights()):
        value = np.asarray(value)
        if value.dtype.kind not in "fiub":
            raise ValueError(f"saving {os.fspath(path)!r}: weight {i} has dtype {value.dtype}, "
                             f"expected a numeric array")
        arrays[f"weight_{i:04d}"] = value
    return arrays


def _atomic_savez(path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez to a temporary file in the same folder, then rename it over ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            np.savez(f, **arrays)  # a file object: numpy adds no ".npz" to the name
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def save_model(model, path, metadata: dict | None = None) -> None:
    """Write ``model`` (config, weights, optional metadata) to one ``.npz`` file at ``path``.

    Args:
        model: a Sequential (anything with get_config, get_weights, built_input_shape).
        path: the file to write (used as given; ".npz" is not appended).
        metadata: optional JSON-able dict an application needs with the model (feature
            settings, label names, ...); read it back with ``read_metadata(path)``.
    Raises:
        ValueError: the metadata or a layer's config is not JSON-able.
    """
    if metadata is not None and not isinstance(metadata, dict):
        raise ValueError(f"saving {os.fspath(path)!r}: metadata must be a dict or None, "
                         f"got {type(metadata).__name__}")
    _json_bytes(metadata, "metadata", path)  # its own clear error before the model's
    input_shape = getattr(model, "built_input_shape", None)
    document = {"format": FORMAT, "version": VERSION, "class_name": type(model).__name__,
                "model": model.get_config(),
                "input_shape": None if input_shape is None else list(input_shape),
                "metadata": metadata}
    arrays = _weight_arrays(model, path)
    arrays["config"] = _json_bytes(document, "the model config", path)
    _atomic_savez(path, arrays)


def save_weights(model, path) -> None:
    """Write only the weights (in get_weights() order) to ``path``, atomically."""
    arrays = _weight_arrays(model, path)
    arrays["config"] = _json_bytes({"format": WEIGHTS_FORMAT, "version": VERSION,
                                    "num_weights": len(arrays)}, "the weights header", path)
    _atomic_savez(path, arrays)


# --- reading ------------------------------------------------------------------------------------
def _read(path) -> tuple[dict, list[np.ndarray]]:
    """(the JSON document, the weight arrays in order) from a minidl file, checked."""
    where = f"{os.fspath(path)!r}"
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"cannot read model file {where}: not a minidl .npz file ({error})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"cannot read model file {where}: a single .npy array, not a minidl .npz file")
    with archive:
        arrays = {}
        for key in archive.files:
            try:
                arrays[key] = archive[key]
            except ValueError as error:  # object arrays need pickle, which is refused
                raise ValueError(f"model file {where}: entry {key!r} cannot be read without pickle "
                                 f"(an object array?); refusing it ({error})") from None
            except (OSError, zipfile.BadZipFile, EOFError) as error:
                raise ValueError(f"model file {where}: entry {key!r} is damaged ({error})") from None
    raw = arrays.pop("config", None)
    if raw is None:
        raise ValueError(f"model file {where} has no 'config' entry: not a minidl file")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(f"model file {where}: 'config' must be a 1-D uint8 array of JSON bytes, "
                         f"got {raw.dtype} of shape {raw.shape}")
    try:
        document = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"model file {where}: the config is not valid UTF-8 JSON ({error})") from None
    if not isinstance(document, dict) or document.get("format") not in (FORMAT, WEIGHTS_FORMAT):
        raise ValueError(f"model file {where}: the config is not a minidl config "
                         f"(format {document.get('format') if isinstance(document, dict) else None!r})")
    if not isinstance(document.get("version"), int) or document["version"] > VERSION:
        raise ValueError(f"model file {where}: format version {document.get('version')!r} is not "
                         f"supported (this minidl reads up to {VERSION})")
    names = sorted(k for k in arrays if k.startswith("weight_"))
    expected = [f"weight_{i:04d}" for i in range(len(names))]
    if names != expected or len(names) != len(arrays):
        raise ValueError(f"model file {where}: expected entries weight_0000 ... in sequence and 'config', "
                         f"got {', '.join(sorted(arrays)) or 'none'}")
    weights = [arrays[name] for name in names]
    for name, value in zip(names, weights):
        if value.dtype.kind not in "fiub":
            raise ValueError(f"model file {where}: {name} has dtype {value.dtype}, expected numbers")
    return document, weights


def _set_weights(model, weights: list[np.ndarray], where: str) -> None:
    targets = model.weights
    if len(weights) != len(targets):
        raise ValueError(f"model file {where} holds {len(weights)} weight arrays, but the model has "
                         f"{len(targets)} ({', '.join(w.name for w in targets) or 'none'})")
    for i, (target, value) in enumerate(zip(targets, weights)):
        if tuple(value.shape) != tuple(target.shape):
            raise ValueError(f"model file {where}: weight_{i:04d} has shape {tuple(value.shape)}, "
                             f"but {target.name} has shape {tuple(target.shape)}")
    model.set_weights(weights)


def load_model(path):
    """The model saved at ``path`` by ``save_model``, with its weights; nothing in the file runs.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: anything wrong with the file, naming the file and the problem.
    """
    where = f"{os.fspath(path)!r}"
    document, weights = _read(path)
    if document["format"] != FORMAT:
        raise ValueError(f"model file {where} holds only weights (saved by save_weights); build the "
                         f"model and call model.load_weights({where})")
    class_name = document.get("class_name", "Sequential")
    if class_name not in MODELS:
        raise ValueError(f"model file {where}: unknown model class {class_name!r}; known: {', '.join(sorted(MODELS))}")
    config = document.get("model")
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ValueError(f"model file {where}: the model config must hold a 'layers' list")
    try:
        layers = [deserialize_layer(entry) for entry in config["layers"]]
    except ValueError as error:
        raise ValueError(f"model file {where}: {error}") from None
    name = config.get("name")
    model = MODELS[class_name](layers, name=name if isinstance(name, str) else None)
    input_shape = document.get("input_shape")
    if input_shape is not None:
        if not isinstance(input_shape, list) or not all(n is None or (isinstance(n, int) and n >= 0)
                                                        for n in input_shape):
            raise ValueError(f"model file {where}: input_shape must be a list of ints or nulls, "
                             f"got {short_repr(input_shape)}")
        if getattr(model, "built_input_shape", None) != tuple(input_shape):
            try:
                model.build(tuple(input_shape))
            except (ValueError, TypeError) as error:
                raise ValueError(f"model file {where}: the layers cannot be built for input shape "
                                 f"{tuple(input_shape)}: {error}") from None
    elif weights:
        raise ValueError(f"model file {where} holds weights but no input_shape to build the model with")
    _set_weights(model, weights, where)
    return model


def load_weights(model, path) -> None:
    """Load the weights in ``path`` (from save_weights or save_model) into a built ``model``.

    Raises:
        ValueError: the model is not built, or the count or a shape differs (naming which).
    """
    where = f"{os.fspath(path)!r}"
    _, weights = _read(path)
    if not model.weights and weights:
        raise ValueError(f"load_weights({where}): the model has no weights yet; build it first "
                         f"(model.build(input_shape), or call it on a batch)")
    _set_weights(model, weights, where)


def read_metadata(path) -> dict | None:
    """The ``metadata`` dict saved with the model at ``path`` (None if none), without building it."""
    document, _ = _read(path)
    return document.get("metadata")
