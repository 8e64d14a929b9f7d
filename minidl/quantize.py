"""int8 post-training quantisation of a model's kernels, per output channel.

    small = dl.quantize(model, calibration_data=x_val)    # a new model; ``model`` is unchanged
    dl.quantize.save(small, "model_int8.npz")              # 3.99x smaller (the digit CRNN)
    small = dl.quantize.load("model_int8.npz")

``model`` is a built Sequential or functional model (``dl.Model(inputs, outputs)``, any number
of inputs and outputs; a shared layer's kernel is one weight, quantised once). Each kernel W of
a Dense, Conv1D/Conv2D, SimpleRNN/LSTM/GRU (kernel and recurrent_kernel; inside Bidirectional
and TimeDistributed too) gets one scale per output channel c, the last axis in Keras' layouts
(a unit, a filter, a gate column):

    s_c = ⌈max_i |W[i, c]| / 127⌉₁₆                 the next float16 up (s_c = 1 for an all-zero column)
    q[i, c] = round(W[i, c] / s_c),  q ∈ [-127, 127]  symmetric: zero stays exactly zero
    Ŵ[i, c] = q[i, c] · s_c                          the weight the model computes with

Per channel rather than one scale per tensor, because one large column would otherwise leave the
others a handful of levels (Krishnamoorthi 2018, "Quantizing deep convolutional networks for
efficient inference"). The rounding error of each weight is at most s_c / 2. The scale is stored
as float16, rounded up so that |W / s_c| ≤ 127 still holds: q · s_c is then exact in float32 (7
bits times 11), so the file holds the very Ŵ the model computes with, and a column's largest
weight lands at most 0.1% below level 127, at 126.9 or above (a column whose largest weight is
under 0.008 has its scale under float16's normal range, 6e-5, and may lose more levels).

The biases of those layers are rounded to float16 too (``float16_biases=True``, the default).
That is lossy, unlike the rest of this file: each bias moves by at most 2^-11 of itself (2^-25
absolute under 6e-5), while the same unit's sum already carries the kernel's rounding, up to
s_c / 2 per input; on the digit CRNN it changes no prediction (README). Normalisation statistics
and everything else stay float32 exactly.

The quantised model is an ordinary minidl model whose kernels hold Ŵ, so every layer runs its
usual float32 code: the kernels are dequantised once, on load, rather than on the fly at each
call (NumPy has no int8 GEMM that would make integer arithmetic faster or more honest here).

The file is a minidl model file (``minidl.saving``: a .npz of .npy members plus the JSON config,
no pickle) with the weights packed into three members rather than one per weight:

    weight_0000   int8 (n,)     every quantised kernel's q, in weight order, each flattened (C order)
    weight_0001   float16 (m,)  every kernel's scales, in the same order, then the float16 biases
    weight_0002   float32 (k,)  every other weight, in weight order
    config        the JSON: the model's config, input_shape, metadata with "quantization":
                  {"kernels": [weight indices], "float16": [weight indices], "calibration": ...}

Loading builds the model from the config (held to the file's declared sizes, as ``load_model``
does), computes each member's length from the built weights' shapes, and compares them with the
members' .npy headers before any data is read; then checks q ∈ [-127, 127], the scales positive
and finite, the floats finite. Anything else is a ``ModelFileError`` naming the file.
``dl.load_model`` refuses such a file (integer weights, three arrays for a model of more) rather
than load q as if it were W.

Where the bytes go (the 60k-parameter digit CRNN of the official split, benchmarks/quantize.py):
its float32 file (weights, config, metadata, as ``save_model`` writes it uncompiled) is 244,919
bytes; the int8 file 61,460, 3.99x smaller (3.98x for the held-out-theo model). The kernels are
98% of the weights: 58,752 bytes as int8 against 235,008 as float32, exactly 4x, deflated to
57,104 (trained int8 weights use their 255 levels almost evenly: 7.7 bits a value). Beside them:
the float16 scales and biases (842 + 842 values, 3,368 bytes, deflated to 2,610), the float32
normalisation statistics (53 values, 291 bytes), the JSON config (939) and four zip members with
their .npy headers (516). Step by step on that model: one member per weight with float32 scales
in the JSON, 3.67x; float16 scales, 3.77x; packed members, 3.83x; both, 3.92x (lossless);
float16 biases, 3.99x. That is 230 bytes short of 4x, and what else was measured does not close
it reliably: no zip64 extra fields in a zip writer of our own (80 bytes), Huffman-only deflate
of the kernels (about 120), float16 normalisation statistics (lossy, about 100) would bring the
file to about 4.00x. Scales rounded up to 6 significant bits instead of 11 pass 4x (4.003x on
the theo model, whose file is 3.977x as written here) by giving up levels: a column's largest
weight then lands as low as level 123, 3% of the kernel's resolution, for 0.6% of the file.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np

from minidl.atomic_write import atomic_savez
from minidl.layers.serialization import short_repr
from minidl.model_file_checks import ModelFileError, read_data, refuse
from minidl.model_io import architecture
# the reader of minidl.saving, so that the packed file is checked exactly as load_model checks any
from minidl.saving import FORMAT, VERSION, ModelFile, build_model, check_metadata

LEVELS = 127                 # symmetric int8: -127..127 (-128 unused, so that -q is always int8)
QUANTIZED_KINDS = ("Dense", "Conv1D", "Conv2D", "SimpleRNN", "LSTM", "GRU")
QUANTIZED_NAMES = ("kernel", "recurrent_kernel")
FLOAT16_MAX = float(np.finfo(np.float16).max)
# the packed members (module docstring), in file order
MEMBERS = (("weight_0000", np.dtype("int8")), ("weight_0001", np.dtype("<f2")), ("weight_0002", np.dtype("<f4")))
SCHEME = "int8 per output channel, float16 scales; packed members (minidl.quantize)"   # short: bytes count


def float16_up(x) -> np.ndarray:
    """The least float16 ≥ x, elementwise, as float32 (so that q = W / s never passes 127)."""
    x = np.asarray(x, dtype=np.float32)
    half = x.astype(np.float16)
    below = half.astype(np.float32) < x
    half[below] = np.nextafter(half[below], np.float16(np.inf))
    return half.astype(np.float32)


def quantize_array(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(q int8, scales (channels,)) of a kernel, one scale per last-axis channel.

    Args:
        weight: (..., channels) float array.
    Returns:
        q with weight's shape, int8 in [-127, 127], and s (channels,) float32 holding float16
        values, with q · s ≈ weight (exact in float32).
    Raises:
        ValueError: a weight too large for a float16 scale (|W| > 127 · 65504) or not finite.
    """
    weight = np.asarray(weight, dtype=np.float32)
    largest = np.abs(weight.reshape(-1, weight.shape[-1])).max(axis=0)
    if not np.isfinite(largest).all() or largest.max(initial=0) / LEVELS > FLOAT16_MAX:
        raise ValueError(f"quantize: a kernel of shape {weight.shape} holds {largest.max():g}; expected finite "
                         f"weights under {LEVELS * FLOAT16_MAX:g} (float16 scales)")
    scales = np.where(largest > 0, float16_up(largest / LEVELS), 1.0).astype(np.float32)
    q = np.clip(np.rint(weight / scales), -LEVELS, LEVELS).astype(np.int8)
    return q, scales


def dequantize_array(q: np.ndarray, scales) -> np.ndarray:
    """Ŵ = q · s, float32, channels on the last axis."""
    return np.asarray(q, dtype=np.float32) * np.asarray(scales, dtype=np.float32)


def _layers_of(model) -> list:
    """Every layer, wrappers and nested models opened (Bidirectional's two directions,
    TimeDistributed's layer, a Sequential inside a functional model)."""
    found, stack = [], list(reversed(model.sublayers()))
    while stack:
        layer = stack.pop()
        found.append(layer)
        stack.extend(reversed(layer.sublayers()))
    return found


def _indices_of(model, names: tuple) -> list[int]:
    """Positions in ``model.get_weights()`` of the quantised layers' weights named ``names``; a
    layer shared by two calls (or listed twice) is one set of weights, found once."""
    wanted = {id(getattr(layer, name)) for layer in _layers_of(model) if type(layer).__name__ in QUANTIZED_KINDS
              for name in names if getattr(layer, name, None) is not None}
    return [i for i, weight in enumerate(model.weights) if id(weight) in wanted]


def quantized_weight_indices(model) -> list[int]:
    """Positions in ``model.get_weights()`` of the kernels that are quantised."""
    return _indices_of(model, QUANTIZED_NAMES)


def _copy(model):
    """A fresh model of the same config and weights (quantising must not touch the original).
    A functional model is built by from_config itself; a Sequential needs its input shape."""
    twin = type(model).from_config(model.get_config())
    if type(model).__name__ == "Sequential":
        twin.build(model.built_input_shape)
    twin.set_weights(model.get_weights())
    return twin


def _check_model(model, where: str) -> None:
    """Refuse what cannot be copied from its config: an unbuilt Sequential, a subclassed model."""
    kind, name = type(model).__name__, getattr(model, "name", "?")
    if kind == "Sequential":
        if not model.built or model.built_input_shape is None:
            raise ValueError(f"{where}: Sequential '{name}' is not built; give its first layer an input shape "
                             f"(layers.Input(...)) or build it first")
    elif getattr(model, "graph", None) is None or getattr(model, "is_subclassed", True):
        raise ValueError(f"{where}: expected a built Sequential or functional model (dl.Model(inputs, outputs)), "
                         f"got {kind} '{name}'" + (" (subclassed: its call is Python code)"
                                                   if hasattr(model, "graph") else ""))


def _calibration(model, quantized, data) -> dict:
    """How far ``quantized`` is from ``model`` on ``data``: the largest output change and, for a
    classifier output (batch, classes), the fraction of samples whose class is unchanged; with
    several outputs also each output's, by name."""
    before, after = model.predict(data), quantized.predict(data)
    several = isinstance(before, list)
    before, after = (before, after) if several else ([before], [after])
    outputs = {}
    for name, b, a in zip(model.output_names, before, after):
        outputs[name] = {"max_abs_output_change": float(np.abs(a - b).max(initial=0))}
        if b.ndim == 2 and b.shape[1] > 1:
            outputs[name]["same_class"] = float(np.mean(b.argmax(axis=1) == a.argmax(axis=1)))
    record = {"samples": int(len(before[0])),
              "max_abs_output_change": max(o["max_abs_output_change"] for o in outputs.values())}
    if several:
        record["outputs"] = outputs
    elif "same_class" in outputs[model.output_names[0]]:
        record["same_class"] = outputs[model.output_names[0]]["same_class"]
    return record


def quantize(model, calibration_data=None, float16_biases: bool = True):
    """A copy of ``model`` with int8 per-channel kernels (see the module docstring).

    Args:
        model: a built Sequential or functional model.
        calibration_data: optional inputs the model takes (an array, or a list or dict of them
            for several inputs) on which the change is measured: the result's
            ``quantization["calibration"]`` then holds the largest change of any output and,
            for a classifier, the fraction of samples whose class is unchanged (with several
            outputs also each output's, under "outputs"). Weight-only quantisation needs no
            data to choose its scales.
        float16_biases: round the biases of the quantised layers to float16 (lossy, small; the
            file stores them in half the bytes). A bias beyond float16's range stays float32.
    Returns:
        A new model of the same class whose kernels are q · s, with ``quantization`` =
        {"weights": {index: scales}, "float16": [indices], "calibration": ... or None} for ``save``.
    Raises:
        ValueError: not a built Sequential or functional model, or a model with nothing to quantise.
    """
    _check_model(model, "quantize")
    quantized = _copy(model)
    indices = quantized_weight_indices(quantized)
    if not indices:
        raise ValueError(f"quantize: model '{model.name}' has no Dense, Conv or recurrent kernel to quantise")
    values = quantized.get_weights()
    scales, half = {}, []
    for i in indices:
        q, scales[i] = quantize_array(values[i])
        values[i] = dequantize_array(q, scales[i])
    for i in (_indices_of(quantized, ("bias",)) if float16_biases else []):
        if np.isfinite(values[i]).all() and np.abs(values[i]).max(initial=0) <= FLOAT16_MAX:
            values[i] = np.asarray(values[i], dtype=np.float16).astype(np.float32)
            half.append(i)
    quantized.set_weights(values)
    calibration = None if calibration_data is None else _calibration(model, quantized, calibration_data)
    quantized.quantization = {"weights": scales, "float16": half, "calibration": calibration}
    return quantized


def _pack(model, record: dict) -> list[np.ndarray]:
    """The three members' arrays (module docstring), each weight checked to be what the file
    can hold exactly: a kernel q · s, a float16 weight a float16."""
    values, scales, half = model.get_weights(), record["weights"], set(record.get("float16", []))
    kernels, halves, singles = [], [], []
    changed = []
    for i, value in enumerate(values):
        value = np.asarray(value)
        if i in scales:
            s = np.asarray(scales[i], dtype=np.float32)
            q = np.rint(value / s)
            if (np.abs(q) > LEVELS).any() or not np.array_equal(dequantize_array(q, s), value) or \
                    not np.array_equal(s.astype(np.float16).astype(np.float32), s):
                changed.append(i)
            kernels.append(q.astype(np.int8).ravel())
        elif i in half:
            if not np.array_equal(value.astype(np.float16).astype(value.dtype), value):
                changed.append(i)
            halves.append(value.astype(np.float16).ravel())
        else:
            singles.append(value.astype(np.float32).ravel())
    if changed:
        raise ValueError(f"quantize.save: weight {changed[0]} ({model.weights[changed[0]].name}) of "
                         f"'{model.name}' changed since quantize (trained further?); quantise it again")
    halves = [np.asarray(scales[i], dtype=np.float32).astype(np.float16) for i in sorted(scales)] + halves
    return [np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)
            for parts, (_, dtype) in zip((kernels, halves, singles), MEMBERS)]


def save(model, path: str | os.PathLike, metadata: dict | None = None) -> None:
    """Write a quantised model as a minidl model file, its kernels int8 (atomic, like save_model).

    Args:
        model: what ``quantize`` (or ``load``) returned: a Sequential or functional model.
        path: the .npz to write. metadata: an application's own (e.g. the digit recogniser's),
            stored beside "quantization".
    Raises:
        ValueError: a model ``quantize`` did not make, or a weight no longer on its grid.
    """
    record = getattr(model, "quantization", None)
    if record is None:
        raise ValueError(f"quantize.save: model '{model.name}' is not quantised; call dl.quantize(model) first")
    arrays = dict(zip((name for name, _ in MEMBERS), _pack(model, record)))
    entries = architecture(model, f"quantize.save({os.fspath(path)!r})")
    stored = {"scheme": SCHEME, "kernels": sorted(record["weights"]), "float16": sorted(record.get("float16", [])),
              "calibration": record["calibration"]}
    document = {"format": FORMAT, "version": VERSION, "class_name": entries["class_name"],
                "model": entries["config"], "input_shape": entries["input_shape"],
                "metadata": {**(metadata or {}), "quantization": stored}}
    arrays["config"] = np.frombuffer(json.dumps(document).encode("utf-8"), dtype=np.uint8)
    # deflated: the JSON shrinks by two thirds, the float16 and float32 members by a quarter,
    # int8 kernels by 3% only; the reader checks deflated members as it checks stored ones
    atomic_savez(path, arrays, compressed=True)


def _index_list(value, count: int, what: str, where: str) -> list[int]:
    """An untrusted list of distinct weight positions, increasing, each in [0, count)."""
    if not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in value) or \
            any(not 0 <= i < count for i in value) or value != sorted(set(value)):
        raise refuse(where, f"'quantization' {what} must be increasing weight positions under {count}, got "
                            f"{short_repr(value, 120)}")
    return value


def _pieces(flat: np.ndarray, shapes: list[tuple]) -> list[np.ndarray]:
    """``flat`` cut into consecutive arrays of ``shapes`` (their sizes add up to its length)."""
    pieces, start = [], 0
    for shape in shapes:
        size = math.prod(shape)
        pieces.append(flat[start:start + size].reshape(shape))
        start += size
    return pieces


def _unpack(file, model, stored: dict) -> tuple[list[np.ndarray], dict, list[int]]:
    """The model's weights (float32), scales and float16 positions from the packed members:
    every length from the built model's shapes, checked against the headers before any read."""
    where, weights = file.where, model.weights
    kernels = _index_list(stored.get("kernels"), len(weights), "kernels", where)
    half = _index_list(stored.get("float16"), len(weights), "float16", where)
    if set(kernels) & set(half) or any(len(weights[i].shape) == 0 for i in kernels):
        raise refuse(where, f"'quantization' kernels {short_repr(kernels, 80)} must be arrays, none of them "
                            f"float16 ({short_repr(half, 80)})")
    rest = [i for i in range(len(weights)) if i not in set(kernels) | set(half)]
    shapes = [tuple(w.shape) for w in weights]
    channels = [shapes[i][-1] for i in kernels]
    lengths = [sum(math.prod(shapes[i]) for i in part) for part in (kernels, half, rest)]   # Python ints
    lengths[1] += sum(channels)
    names = [member.name for member in file.weights]
    if file.slots or names != [name for name, _ in MEMBERS]:
        raise refuse(where, f"a quantised model file holds {', '.join(name for name, _ in MEMBERS)} and 'config', "
                            f"got {short_repr(', '.join(names + [m.name for m in file.slots]), 200)}")
    for member, (_, dtype), length in zip(file.weights, MEMBERS, lengths):
        if member.dtype != dtype or member.shape != (length,):
            raise refuse(where, f"{member.name} is {member.dtype} of shape {member.shape}; the model "
                                f"'{model.name}' needs {dtype} of shape ({length},)")
    q, halves, singles = (read_data(file.archive, member, where) for member in file.weights)
    if (q == -128).any():
        raise refuse(where, "weight_0000 holds -128; int8 kernels are symmetric, in [-127, 127]")
    for member, data in zip(file.weights[1:], (halves, singles)):
        if not np.isfinite(data).all():
            raise refuse(where, f"{member.name} holds NaN or infinite values")
    scale_list = _pieces(halves[:sum(channels)].astype(np.float32), [(n,) for n in channels])
    bad = [i for i, s in zip(kernels, scale_list) if not (s > 0).all()]
    if bad:
        raise refuse(where, f"the scales of weight {bad[0]} ({weights[bad[0]].name}) must be positive")
    scales = dict(zip(kernels, scale_list))
    values = dict(zip(kernels, (dequantize_array(part, scales[i]) for i, part in
                                zip(kernels, _pieces(q, [shapes[i] for i in kernels])))))
    values.update(zip(half, (part.astype(np.float32) for part in
                             _pieces(halves[sum(channels):], [shapes[i] for i in half]))))
    values.update(zip(rest, _pieces(singles, [shapes[i] for i in rest])))
    return [values[i] for i in range(len(weights))], scales, half


def load(path: str | os.PathLike, validate_metadata=None):
    """A quantised model from ``save``'s file, its kernels q · s in float32, ``quantization`` set.

    Args:
        path: the .npz file.
        validate_metadata: called with the file's metadata before the model is built, as for
            ``dl.load_model``; raising ValueError (or TypeError, KeyError) refuses the file.
    Returns:
        The Sequential or functional model, uncompiled.
    Raises:
        FileNotFoundError: no file at ``path``.
        minidl.saving.ModelFileError (a ValueError): a damaged file, or one without quantisation.
    """
    with ModelFile(path, allow_non_float=True) as file:
        where, document = file.where, file.document
        stored = document.get("metadata", {}).get("quantization") if isinstance(document.get("metadata"), dict) \
            else None
        if document["format"] != FORMAT or not isinstance(stored, dict):
            raise ModelFileError(f"quantize.load: {where} holds no quantised model (no 'quantization' in its "
                                 f"metadata); use dl.load_model")
        if "kernels" not in stored:
            raise refuse(where, "an older quantised layout (one member per weight, scales in the JSON); "
                                "quantise the float model again")
        check_metadata(document, validate_metadata, where)
        try:
            model = build_model(document, where, sum(member.size for member in file.weights))
        except ModelFileError:
            raise
        except ValueError as error:
            raise ModelFileError(str(error)) from None
        values, scales, half = _unpack(file, model, stored)
    model.set_weights(values)
    model.quantization = {"weights": scales, "float16": half, "calibration": stored.get("calibration")}
    return model


# dl.quantize is the function (minidl/__init__.py); its file's save and load ride on it, so that
# dl.quantize.save(...) and dl.quantize.load(...) read as the module docstring shows
quantize.save = save
quantize.load = load

__all__ = ["dequantize_array", "float16_up", "load", "quantize", "quantize_array", "quantized_weight_indices",
           "save"]
