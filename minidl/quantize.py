"""int8 post-training quantisation of a model's kernels, per output channel.

    small = dl.quantize(model, calibration_data=x_val)    # a new model; ``model`` is unchanged
    dl.quantize.save(small, "model_int8.npz")              # 3.7x smaller (the digit CRNN)
    small = dl.quantize.load("model_int8.npz")

Each kernel W of a Dense, Conv1D/Conv2D, SimpleRNN/LSTM/GRU (kernel and recurrent_kernel; inside
Bidirectional and TimeDistributed too) gets one scale per output channel c, the last axis in
Keras' layouts (a unit, a filter, a gate column):

    s_c = max_i |W[i, c]| / 127                      (s_c = 1 for an all-zero column)
    q[i, c] = round(W[i, c] / s_c),  q ∈ [-127, 127]  symmetric: zero stays exactly zero
    Ŵ[i, c] = q[i, c] · s_c                          the weight the model computes with

Per channel rather than one scale per tensor, because one large column would otherwise leave the
others a handful of levels (Krishnamoorthi 2018, "Quantizing deep convolutional networks for
efficient inference"). The rounding error of each weight is at most s_c / 2. Biases,
normalisation statistics and everything else stay float32: they are few, and the bias is added
at a scale int8 cannot hold.

The quantised model is an ordinary minidl model whose kernels hold Ŵ, so every layer runs its
usual float32 code: the kernels are dequantised once, on load, rather than on the fly at each
call (NumPy has no int8 GEMM that would make integer arithmetic faster or more honest here). The
file is minidl's model file (``minidl.saving``): the same config JSON and weight members, checked
the same way on load, with each quantised kernel stored as its int8 q and the scales in the
metadata under "quantization". ``dl.load_model`` refuses such a file (integer weights) rather
than load q as if it were W; ``load`` here multiplies the scales back in.

Where the bytes go (the 60k-parameter digit CRNN, benchmarks/quantize.py): its kernels are 98%
of its weights, 58,752 bytes as int8 against 235,008 as float32, exactly 4x. What stays beside
them keeps the file from 4x: the float32 biases and normalisation statistics (3,580 bytes), the
scales (842 channels, 3,368 bytes), and per member a 128-byte .npy header and about 130 bytes
of zip entry, 14 members, plus the JSON config. Those alone put the floor at 3.72x for any
lossless file of this model; deflating the members (the JSON above all) brings the file to
3.67x (3.35x stored). Only fewer bits in what stays (float16 scales, int8 biases) would go
further, at a cost in accuracy this module does not take.
"""
from __future__ import annotations

import base64
import json
import os

import numpy as np

from minidl.atomic_write import atomic_savez
from minidl.saving import FORMAT, VERSION, load_model, read_metadata

LEVELS = 127                 # symmetric int8: -127..127 (-128 unused, so that -q is always int8)
QUANTIZED_KINDS = ("Dense", "Conv1D", "Conv2D", "SimpleRNN", "LSTM", "GRU")
QUANTIZED_NAMES = ("kernel", "recurrent_kernel")


def quantize_array(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(q int8, scales float32 (channels,)) of a kernel, one scale per last-axis channel.

    Args:
        weight: (..., channels) float array.
    Returns:
        q with weight's shape, int8 in [-127, 127], and s (channels,) with q · s ≈ weight.
    """
    weight = np.asarray(weight, dtype=np.float32)
    largest = np.abs(weight.reshape(-1, weight.shape[-1])).max(axis=0)
    scales = np.where(largest > 0, largest / LEVELS, 1.0).astype(np.float32)
    q = np.clip(np.rint(weight / scales), -LEVELS, LEVELS).astype(np.int8)
    return q, scales


def dequantize_array(q: np.ndarray, scales) -> np.ndarray:
    """Ŵ = q · s, float32, channels on the last axis."""
    return np.asarray(q, dtype=np.float32) * np.asarray(scales, dtype=np.float32)


def _layers_of(model) -> list:
    """Every layer, wrappers opened (Bidirectional's two directions, TimeDistributed's layer)."""
    found, stack = [], list(reversed(model.sublayers()))
    while stack:
        layer = stack.pop()
        found.append(layer)
        stack.extend(reversed(layer.sublayers()))
    return found


def quantized_weight_indices(model) -> list[int]:
    """Positions in ``model.get_weights()`` of the kernels that are quantised."""
    wanted = {id(getattr(layer, name)) for layer in _layers_of(model) if type(layer).__name__ in QUANTIZED_KINDS
              for name in QUANTIZED_NAMES if getattr(layer, name, None) is not None}
    return [i for i, weight in enumerate(model.weights) if id(weight) in wanted]


def _copy(model):
    """A fresh model of the same config and weights (quantising must not touch the original)."""
    twin = type(model).from_config(model.get_config())
    if model.built_input_shape is not None:
        twin.build(model.built_input_shape)
    twin.set_weights(model.get_weights())
    return twin


def _check_model(model, where: str) -> None:
    if type(model).__name__ != "Sequential" or not model.built or model.built_input_shape is None:
        raise ValueError(f"{where}: expected a built Sequential (give its first layer an input shape), "
                         f"got {type(model).__name__} '{getattr(model, 'name', '?')}'")


def quantize(model, calibration_data=None):
    """A copy of ``model`` with int8 per-channel kernels (see the module docstring).

    Args:
        model: a built Sequential.
        calibration_data: optional inputs (an array the model takes) on which the change is
            measured: the result's ``quantization["calibration"]`` then holds the largest change of
            any output and, for a classifier, the fraction of samples whose class is unchanged.
            Weight-only quantisation needs no data to choose its scales.
    Returns:
        A new Sequential whose kernels are q · s, with ``quantization`` = {"weights": {index:
        scales}, "calibration": ... or None} for ``save``.
    Raises:
        ValueError: not a built Sequential, or a model with nothing to quantise.
    """
    _check_model(model, "quantize")
    quantized = _copy(model)
    indices = quantized_weight_indices(quantized)
    if not indices:
        raise ValueError(f"quantize: model '{model.name}' has no Dense, Conv or recurrent kernel to quantise")
    values = quantized.get_weights()
    scales = {}
    for i in indices:
        q, scales[i] = quantize_array(values[i])
        values[i] = dequantize_array(q, scales[i])
    quantized.set_weights(values)
    calibration = None
    if calibration_data is not None:
        before, after = model.predict(calibration_data), quantized.predict(calibration_data)
        calibration = {"samples": int(len(before)), "max_abs_output_change": float(np.abs(after - before).max())}
        if before.ndim == 2 and before.shape[1] > 1:
            calibration["same_class"] = float(np.mean(before.argmax(axis=1) == after.argmax(axis=1)))
    quantized.quantization = {"weights": scales, "calibration": calibration}
    return quantized


def _encode(scales: np.ndarray) -> str:
    return base64.b64encode(np.asarray(scales, dtype="<f4").tobytes()).decode("ascii")


def _decode(text) -> np.ndarray | None:
    """Scales from _encode's text, or None when it is not that (an untrusted file)."""
    if not isinstance(text, str):
        return None
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        return None
    if len(raw) % 4:
        return None
    scales = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    return scales if np.isfinite(scales).all() and (scales > 0).all() else None


def save(model, path: str | os.PathLike, metadata: dict | None = None) -> None:
    """Write a quantised model as minidl's model file, its kernels as int8 (atomic, like save_model).

    Args:
        model: what ``quantize`` returned.
        path: the .npz to write. metadata: an application's own (e.g. the digit recogniser's),
            stored beside "quantization".
    Raises:
        ValueError: a model ``quantize`` did not make, or a kernel no longer on its int8 grid.
    """
    record = getattr(model, "quantization", None)
    if record is None:
        raise ValueError(f"quantize.save: model '{model.name}' is not quantised; call dl.quantize(model) first")
    values = model.get_weights()
    arrays = {}
    for i, value in enumerate(values):
        if i in record["weights"]:
            scales = record["weights"][i]
            q = np.rint(value / scales)
            if np.abs(q * scales - value).max(initial=0) > 1e-6 * max(float(np.abs(value).max(initial=0)), 1.0):
                raise ValueError(f"quantize.save: weight {i} of '{model.name}' changed since quantize "
                                 f"(trained further?); quantise it again")
            value = q.astype(np.int8)
        arrays[f"weight_{i:04d}"] = np.asarray(value)
    # the scales as little-endian float32 bytes in base64: exact, and a third of the JSON that
    # decimal text would take (which made the file of the digit CRNN 2.8x smaller instead of 3.4x)
    stored = {"scheme": "int8 symmetric, one scale per output channel (last axis); scales base64 float32 LE",
              "weights": {str(i): _encode(scales) for i, scales in record["weights"].items()},
              "calibration": record["calibration"]}
    document = {"format": FORMAT, "version": VERSION, "class_name": type(model).__name__,
                "model": model.get_config(), "input_shape": list(model.built_input_shape),
                "metadata": {**(metadata or {}), "quantization": stored}}
    arrays["config"] = np.frombuffer(json.dumps(document).encode("utf-8"), dtype=np.uint8)
    # deflated: the JSON (its base64 scales above all) shrinks by 40%; int8 kernels by a few per
    # cent only (trained weights use their 255 levels almost evenly), and the reader checks
    # deflated members as it checks stored ones (minidl.model_file_checks)
    atomic_savez(path, arrays, compressed=True)


def load(path: str | os.PathLike, validate_metadata=None):
    """A quantised model from ``save``'s file, its kernels q · s in float32, ``quantization`` set.

    The file is checked as ``dl.load_model`` checks any model file; ``validate_metadata`` as there.
    Raises:
        minidl.saving.ModelFileError (a ValueError): a damaged file, or one without quantisation.
    """
    metadata = read_metadata(path, validate_metadata=validate_metadata)
    stored = (metadata or {}).get("quantization") if isinstance(metadata, dict) else None
    if not isinstance(stored, dict) or not isinstance(stored.get("weights"), dict):
        raise ValueError(f"quantize.load: {os.fspath(path)!r} holds no quantised model (no "
                         f"'quantization' in its metadata); use dl.load_model")
    model = load_model(path, allow_non_float=True, validate_metadata=validate_metadata)
    values = model.get_weights()
    scales = {}
    for key, text in stored["weights"].items():
        i = int(key) if isinstance(key, str) and key.isdigit() else -1
        channel_scales = _decode(text)
        if not 0 <= i < len(values) or channel_scales is None or len(channel_scales) != values[i].shape[-1]:
            raise ValueError(f"quantize.load: {os.fspath(path)!r}: the scales of weight {key!r} do not fit "
                             f"its shape {values[i].shape if 0 <= i < len(values) else '(no such weight)'}")
        scales[i] = channel_scales
        values[i] = dequantize_array(values[i], scales[i])
    model.set_weights(values)
    model.quantization = {"weights": scales, "calibration": stored.get("calibration")}
    return model


# dl.quantize is the function (minidl/__init__.py); its file's save and load ride on it, so that
# dl.quantize.save(...) and dl.quantize.load(...) read as the module docstring shows
quantize.save = save
quantize.load = load

__all__ = ["dequantize_array", "load", "quantize", "quantize_array", "quantized_weight_indices", "save"]
