"""Saving and loading models: one ``.npz`` of weight arrays plus a JSON config, never pickle.

A model file is an ordinary NumPy ``.npz`` archive:

    weight_0000, weight_0001, ...   the weights, in ``model.get_weights()`` order (Keras' order)
    optimizer_0000, ...             the optimizer's slots (moments), when the model is compiled
    config                          uint8 array holding UTF-8 JSON:
                                    {"format": "minidl", "version": 2, "class_name": "Sequential",
                                     "model": model.get_config(), "input_shape": [null, 20],
                                     "metadata": {...}, "compile": {...},
                                     "optimizer_state": {...}, "random_state": {...}}

Version 2 adds what resuming needs (``minidl.resume_state``): ``load_model`` returns the model
compiled as it was, its optimizer with its slots and step count, and ``dl.random`` where it was,
so that training 3 epochs, saving, loading and training 3 more gives the weights 6 epochs in one
go give. Version 1 files (no compile settings) still load, uncompiled.

A model file is untrusted input, and loading checks it in the order that keeps a small file
from taking the machine: the zip's member list and each member's ``.npy`` header, before any
data (``minidl.model_file_checks``), then the JSON config (every integer bounded, see
``minidl.layers.serialization.check_config_numbers``), then the model is built with the sizes
its config implies held to the weights the file declares (``serialization.size_budget``), then
the built model's weight shapes are compared with the headers, and only then is any weight
read, and checked to be finite. Weights are floats: a file with integer weights, or NaN/inf in
them, loads only when asked (``allow_non_float``, ``allow_nonfinite``). Each layer is rebuilt
from its class name by the registry of known layers (``minidl.layers.serialization``), and the
model class (Sequential) from the same file's registry of models, so this file never imports
``minidl.models`` (which imports it) and a model file can never run code of its own. Every
problem is a ``ModelFileError`` (a ValueError) naming the file and, where there is one, the member.

A subclassed model is saved only when its class is registered (``register_serializable``, also
under Keras' name ``register_keras_serializable``) and has a ``get_config``: the file then holds
that config and the input shapes of its first call, and loading builds ``cls(**config)`` of the
class registered in this process (or given in ``custom_objects``) with a trial call; the sizes
such a class makes are its own code's, bounded only by ``check_config_numbers``.

Writes are atomic (``minidl.atomic_write``): a save killed half-way leaves the previous file
whole, and its leftover temp file is removed by a later save into that folder.
"""
from __future__ import annotations

import json
import os
import zipfile
from typing import Callable

import numpy as np

# Names that lived in this file before it was split stay importable from it (minidl.saving.X),
# hence the re-exports not used here (noqa: F401).
from minidl import random
from minidl.atomic_write import STALE_TEMP_SECONDS, atomic_savez, remove_stale_temp_files  # noqa: F401
from minidl import resume_state
from minidl.layers.serialization import (LAYERS, MODELS, check_config_numbers, deserialize_layer,  # noqa: F401
                                         register_serializable, serialize_layer, short_repr, size_budget)
from minidl.model_io import architecture, custom_classes, rebuild_subclassed
from minidl.model_file_checks import (INFLATION_FLOOR, MAX_CONFIG_BYTES, MAX_INFLATION,  # noqa: F401
                                      MAX_MEMBERS, MAX_WEIGHT_BYTES, Member, ModelFileError,
                                      open_members, read_data, refuse)

# Keras' name for the decorator that lets files name a class of the caller's
register_keras_serializable = register_serializable

FORMAT = "minidl"
WEIGHTS_FORMAT = "minidl-weights"
VERSION = 2


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


def save_model(model, path, metadata: dict | None = None, include_optimizer: bool = True) -> None:
    """Write ``model`` (config, weights, compile settings, optimizer state, ``dl.random``'s
    state, optional metadata) to one ``.npz`` file at ``path``.

    Args:
        model: a Sequential (anything with get_config, get_weights, built_input_shape).
        path: the file to write (used as given; ".npz" is not appended).
        metadata: optional JSON-able dict an application needs with the model (feature
            settings, label names, ...); read it back with ``read_metadata(path)``.
        include_optimizer: also write the optimizer's slots and step count (as Keras).
    Raises:
        ValueError: the metadata or a layer's config is not JSON-able.
    """
    if metadata is not None and not isinstance(metadata, dict):
        raise ValueError(f"saving {os.fspath(path)!r}: metadata must be a dict or None, "
                         f"got {type(metadata).__name__}")
    _json_bytes(metadata, "metadata", path)  # its own clear error before the model's
    entries = architecture(model, f"saving {os.fspath(path)!r}")
    entries["model"] = entries.pop("config")
    document = {"format": FORMAT, "version": VERSION, **entries,
                "metadata": metadata, "compile": resume_state.compile_config(model),
                "random_state": random.get_state()}
    arrays = _weight_arrays(model, path)
    if include_optimizer and document["compile"] is not None:
        document["optimizer_state"], slots = resume_state.optimizer_state(model)
        arrays.update({f"optimizer_{k:04d}": slot for k, slot in enumerate(slots)})
    arrays["config"] = _json_bytes(document, "the model config", path)
    atomic_savez(path, arrays)


def save_weights(model, path) -> None:
    """Write only the weights (in get_weights() order) to ``path``, atomically."""
    arrays = _weight_arrays(model, path)
    arrays["config"] = _json_bytes({"format": WEIGHTS_FORMAT, "version": VERSION,
                                    "num_weights": len(arrays)}, "the weights header", path)
    atomic_savez(path, arrays)


# --- reading: the document and the weights, on top of the checked members -------------------------
class ModelFile:
    """An open model file: its checked members and JSON document; weights read on demand (also
    the reader of minidl.quantize's packed int8 files)."""

    def __init__(self, path, allow_non_float: bool = False):
        self.allow_non_float = allow_non_float
        self.where = f"{os.fspath(path)!r}"
        where = self.where
        try:
            with open(path, "rb") as f:
                magic = f.read(6)
                file_size = os.fstat(f.fileno()).st_size
        except FileNotFoundError:
            raise
        except IsADirectoryError:
            raise ModelFileError(f"cannot read model file {where}: it is a folder, not a file") from None
        except OSError as error:
            raise ModelFileError(f"cannot read model file {where}: {error.strerror or error}") from None
        if magic == b"\x93NUMPY":
            raise ModelFileError(f"cannot read model file {where}: a single .npy array, not a minidl .npz file")
        try:
            self.archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
            raise ModelFileError(f"cannot read model file {where}: not a minidl .npz file ({error})") from None
        try:
            self.members = open_members(self.archive, where, file_size)
            self.document = self._read_document()
            self.weights = self._weight_members()
        except BaseException:
            self.archive.close()
            raise

    def __enter__(self) -> "ModelFile":
        return self

    def __exit__(self, *exc) -> None:
        self.archive.close()

    def _read_document(self) -> dict:
        where = self.where
        member = self.members.get("config")
        if member is None:
            raise ModelFileError(f"model file {where} has no 'config' entry: not a minidl file")
        if member.dtype != np.uint8 or len(member.shape) != 1:
            raise refuse(where, f"'config' must be a 1-D uint8 array of JSON bytes, got {member.dtype} "
                                f"of shape {member.shape}")
        if member.nbytes > MAX_CONFIG_BYTES:
            raise refuse(where, f"'config' is {member.nbytes:,} bytes, more than the {MAX_CONFIG_BYTES:,} "
                                f"a model config may take")
        raw = read_data(self.archive, member, where)
        try:
            document = json.loads(raw.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as error:  # ValueError: JSONDecodeError, huge ints
            raise refuse(where, f"the config is not valid UTF-8 JSON ({error})") from None
        if not isinstance(document, dict) or document.get("format") not in (FORMAT, WEIGHTS_FORMAT):
            raise refuse(where, f"the config is not a minidl config (format "
                                f"{short_repr(document.get('format')) if isinstance(document, dict) else None})")
        version = document.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= VERSION:
            raise refuse(where, f"format version {short_repr(version, 40)} is not supported (this minidl "
                                f"reads versions 1 to {VERSION})")
        return document

    def _numbered_members(self, prefix: str) -> list[Member]:
        """The members prefix_0000, prefix_0001, ... in order; refused unless they run without a gap."""
        names = [name for name in self.members if name.startswith(prefix)]
        expected = [f"{prefix}{i:04d}" for i in range(len(names))]
        if sorted(names, key=lambda n: int(n[len(prefix):])) != expected:
            raise refuse(self.where, f"expected entries {prefix}0000 ... in sequence and 'config', got "
                                     f"{short_repr(', '.join(sorted(self.members)), 300)}")
        return [self.members[name] for name in expected]

    def _weight_members(self) -> list[Member]:
        expected = [member.name for member in self._numbered_members("weight_")]
        self.slots = self._numbered_members("optimizer_")
        declared = self.document.get("num_weights")
        if self.document["format"] == WEIGHTS_FORMAT and declared is not None and declared != len(expected):
            raise refuse(self.where, f"the header says {short_repr(declared, 40)} weights, the file holds "
                                     f"{len(expected)}")
        weights = [self.members[name] for name in expected]
        for member in weights + self.slots:
            kind = member.dtype.kind
            if kind not in "fiub":
                raise refuse(self.where, f"{member.name} has dtype {member.dtype}, expected numbers")
            if kind != "f" and not self.allow_non_float:
                raise refuse(self.where, f"{member.name} has dtype {member.dtype}, expected floating-point "
                                         f"weights; pass allow_non_float=True to load it anyway")
        return weights

    def check_against(self, model) -> None:
        """The built model's weights against the headers: count and shapes; no data read."""
        where, targets = self.where, model.weights
        if len(self.weights) != len(targets):
            raise ModelFileError(f"model file {where} holds {len(self.weights)} weight arrays, but the model "
                                 f"has {len(targets)} ({short_repr(', '.join(w.name for w in targets) or 'none', 300)})")
        for member, target in zip(self.weights, targets):
            if member.shape != tuple(target.shape):
                raise refuse(where, f"{member.name} has shape {member.shape}, but {target.name} has shape "
                                    f"{tuple(target.shape)}")

    def read_weights(self, model, allow_nonfinite: bool) -> list[np.ndarray]:
        """The weight arrays in order, each checked to be finite unless allowed."""
        arrays = []
        for member, target in zip(self.weights, model.weights):
            value = read_data(self.archive, member, self.where)
            if not allow_nonfinite and value.dtype.kind == "f" and not np.isfinite(value).all():
                bad = int(np.count_nonzero(~np.isfinite(value)))
                raise refuse(self.where, f"{member.name} ({target.name}) holds {bad:,} NaN or infinite "
                                         f"values; pass allow_nonfinite=True to load it anyway")
            arrays.append(value)
        return arrays


    def read_slots(self, allow_nonfinite: bool) -> list[np.ndarray]:
        """The optimizer's slot arrays in order, each checked to be finite unless allowed."""
        arrays = []
        for member in self.slots:
            value = read_data(self.archive, member, self.where)
            if not allow_nonfinite and value.dtype.kind == "f" and not np.isfinite(value).all():
                raise refuse(self.where, f"{member.name} (an optimizer slot) holds NaN or infinite values; "
                                         f"pass allow_nonfinite=True to load it anyway")
            arrays.append(value)
        return arrays


def check_metadata(document: dict, validate_metadata: Callable[[dict | None], None] | None, where: str) -> None:
    """Call ``validate_metadata`` (if any) on the document's metadata; its ValueError, TypeError
    or KeyError refuses the file as a ModelFileError."""
    if validate_metadata is None:
        return
    try:
        validate_metadata(document.get("metadata"))
    except (ValueError, TypeError, KeyError) as error:
        raise refuse(where, f"metadata refused: {error}") from None


def _total_weight_elements(file: ModelFile) -> int:
    return sum(member.size for member in file.weights)


def load_model(path, *, custom_objects: dict | None = None, compile: bool = True,  # noqa: A002 (Keras' name)
               allow_nonfinite: bool = False, allow_non_float: bool = False,
               validate_metadata: Callable[[dict | None], None] | None = None,
               restore_random_state: bool = True):
    """The model saved at ``path`` by ``save_model``, with its weights, compiled as it was saved,
    with its optimizer's state; nothing in the file runs.

    Args:
        path: the ``.npz`` file.
        custom_objects: {name: class or function} for what the file names that is not minidl's:
            a layer class, a loss or metric function, an optimizer class (as Keras).
        compile: compile the model with the saved settings and restore the optimizer's slots
            and step count (a file of version 1, or saved uncompiled, loads uncompiled).
        allow_nonfinite: load weights holding NaN or inf (refused by default).
        allow_non_float: load integer or boolean weight arrays, cast to the layers' float type.
        validate_metadata: called with the file's metadata dict (or None) before the model is
            built; raising ValueError (or TypeError, KeyError) refuses the file, e.g. an
            application checking that its ``sample_rate`` is sane.
        restore_random_state: put ``dl.random`` where it was at the save, so that training
            goes on with the shuffles and dropout masks an unbroken run would have drawn.
    Raises:
        FileNotFoundError: no file at ``path``.
        ModelFileError: (a ValueError) anything wrong with the file, naming the file and the problem.
    """
    with ModelFile(path, allow_non_float) as file:
        where, document = file.where, file.document
        if document["format"] != FORMAT:
            raise ModelFileError(f"model file {where} holds only weights (saved by save_weights); build the "
                                 f"model and call model.load_weights({where})")
        check_metadata(document, validate_metadata, where)
        try:
            with custom_classes(custom_objects, f"load_model({where})"):
                model = build_model(document, where, _total_weight_elements(file))
        except ModelFileError:
            raise
        except ValueError as error:
            raise ModelFileError(str(error)) from None
        file.check_against(model)
        slot_state = None
        if compile and document.get("compile") is not None:
            try:
                resume_state.compile_from_config(model, document["compile"], custom_objects)
                if file.slots or document.get("optimizer_state") is not None:
                    slot_state = document.get("optimizer_state")
                    resume_state.check_optimizer_state(slot_state, len(file.slots),
                                                       [tuple(w.shape) for w in model.weights],
                                                       [m.shape for m in file.slots], model.optimizer)
            except (ValueError, TypeError) as error:
                raise refuse(where, f"the compile settings cannot be used: {error}") from None
        model.set_weights(file.read_weights(model, allow_nonfinite))
        if slot_state is not None:
            resume_state.restore_optimizer(model, slot_state, file.read_slots(allow_nonfinite))
        if restore_random_state and document.get("random_state") is not None:
            try:
                resume_state.restore_random(document["random_state"])
            except ValueError as error:
                raise refuse(where, str(error)) from None
    return model


def load_training_state(model, path, *, allow_nonfinite: bool = False) -> dict | None:
    """Put a file of ``save_model`` back into the compiled ``model`` it was saved from: its
    weights, its optimizer's slots and step count, and ``dl.random``'s state, so that training
    goes on as if never stopped (``callbacks.BackupAndRestore``). The optimizer's settings are
    the model's own. Returns the file's metadata.

    Raises:
        ModelFileError: the file does not fit the model (count or shape of a weight or a slot).
    """
    with ModelFile(path) as file:
        file.check_against(model)
        state = file.document.get("optimizer_state")
        if state is not None and getattr(model, "optimizer", None) is not None:
            try:
                resume_state.check_optimizer_state(state, len(file.slots), [tuple(w.shape) for w in model.weights],
                                                   [m.shape for m in file.slots], model.optimizer)
            except ValueError as error:
                raise refuse(file.where, str(error)) from None
        else:
            state = None
        model.set_weights(file.read_weights(model, allow_nonfinite))
        if state is not None:
            resume_state.restore_optimizer(model, state, file.read_slots(allow_nonfinite))
        if file.document.get("random_state") is not None:
            try:
                resume_state.restore_random(file.document["random_state"])
            except ValueError as error:
                raise refuse(file.where, str(error)) from None
        return file.document.get("metadata")


def build_model(document: dict, where: str, weight_elements: int):
    """The model the document describes, built with its allocations held to the file's
    ``weight_elements`` (the sum of its weight members' sizes); a ModelFileError if it cannot be."""
    class_name = document.get("class_name", "Sequential")
    if class_name not in MODELS:
        raise refuse(where, f"unknown model class {short_repr(class_name)}; known: {', '.join(sorted(MODELS))}")
    config = document.get("model")
    if document.get("subclassed"):  # a registered class of the caller's, rebuilt from its config
        if not isinstance(config, dict):
            raise refuse(where, "the model config must be a dict")
        try:
            check_config_numbers(config, "model")
            model = rebuild_subclassed(MODELS[class_name], config, document.get("input_shapes"))
        except (ValueError, TypeError) as error:
            raise refuse(where, f"the subclassed model cannot be built: {error}") from None
        return model
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise refuse(where, "the model config must hold a 'layers' list")
    input_shape = document.get("input_shape")
    if input_shape is not None and (not isinstance(input_shape, list) or not all(
            n is None or (isinstance(n, int) and not isinstance(n, bool) and n >= 0) for n in input_shape)):
        raise refuse(where, f"input_shape must be a list of ints or nulls, got {short_repr(input_shape)}")
    try:
        check_config_numbers(config, "model")
        check_config_numbers(input_shape, "input_shape")
        layers = [deserialize_layer(entry) for entry in config["layers"]]
    except ValueError as error:
        raise refuse(where, str(error)) from None
    name = config.get("name")
    with size_budget(weight_elements):
        try:
            model = MODELS[class_name].from_saved_layers(layers, config)
        except (ValueError, TypeError) as error:
            raise refuse(where, f"the layers cannot be built: {error}") from None
        if input_shape is not None:
            if getattr(model, "built_input_shape", None) != tuple(input_shape):
                try:
                    model.build(tuple(input_shape))
                except (ValueError, TypeError) as error:
                    raise refuse(where, f"the layers cannot be built for input shape {tuple(input_shape)}: "
                                        f"{error}") from None
        elif weight_elements:
            raise ModelFileError(f"model file {where} holds weights but no input_shape to build the model with")
    return model


def load_weights(model, path, *, allow_nonfinite: bool = False, allow_non_float: bool = False) -> None:
    """Load the weights in ``path`` (from save_weights or save_model) into a built ``model``.

    Args:
        allow_nonfinite, allow_non_float: as for ``load_model``.
    Raises:
        ModelFileError: the model is not built, or the count, a shape or a dtype differs (naming which).
    """
    with ModelFile(path, allow_non_float) as file:
        if not model.weights and file.weights:
            raise ModelFileError(f"load_weights({file.where}): the model has no weights yet; build it first "
                                 f"(model.build(input_shape), or call it on a batch)")
        file.check_against(model)
        model.set_weights(file.read_weights(model, allow_nonfinite))


def read_metadata(path, *, validate_metadata: Callable[[dict | None], None] | None = None) -> dict | None:
    """The ``metadata`` dict saved with the model at ``path`` (None if none), without building it
    or reading any weight; ``validate_metadata`` as for ``load_model``."""
    with ModelFile(path, allow_non_float=True) as file:  # no weight is read
        check_metadata(file.document, validate_metadata, file.where)
        return file.document.get("metadata")
