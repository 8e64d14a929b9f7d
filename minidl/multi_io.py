"""Data for models of several inputs or outputs: lists or dicts of arrays, batched by sample index.

Keras takes ``x`` (and ``y``) as one array, a list in the order of ``model.inputs`` (outputs), or
a dict keyed by input (output) name. ``minidl.batches`` walks one array of samples; here the
structures are lined up with the model, and ``batches.batch_source`` walks the sample *indices*
``0 .. n-1`` instead, so that its shuffling, validation split and weighting stay the one
definition; each batch of indices is then gathered from every array:

    x = [a (n, 4), b (n, 7)]  ──batch_source over arange(n)──►  [3, 0, 7, ...]  ──►  [a[idx], b[idx]]

A single array goes to ``batch_source`` unchanged. Sequences and generators yielding structures
are not supported yet, and say so.
"""
from __future__ import annotations

import numpy as np

from minidl import backend
from minidl.batches import batch_source, is_batch_source, to_model_device


def line_up(value, names: list[str], what: str, where: str):
    """``value`` as a list matching ``names`` (a model's input or output names), or None when it
    is one array for a model with one such name (nothing to line up).

    Raises:
        ValueError: a list of the wrong length, a dict missing a name or naming an unknown one,
            or one array for a model of several.
    """
    if isinstance(value, dict):
        missing = [name for name in names if name not in value]
        unknown = sorted(set(value) - set(names))
        if missing or unknown:
            raise ValueError(f"{where}: {what} as a dict must have the keys {names}; missing {missing}, "
                             f"unknown {unknown}")
        return [value[name] for name in names]
    if isinstance(value, (list, tuple)):
        if len(names) == 1:  # one input: a list is one array of rows, or a list holding the one array
            return [value[0]] if len(value) == 1 and hasattr(value[0], "shape") else None
        if len(value) != len(names):
            raise ValueError(f"{where}: {what} is a list of {len(value)} arrays, but the model has "
                             f"{len(names)} ({', '.join(names)})")
        return list(value)
    if len(names) > 1 and value is not None:
        raise ValueError(f"{where}: the model has {len(names)} {what} ({', '.join(names)}); give a list or "
                         f"a dict of arrays, got one array")
    return None


def batch_length(x) -> int:
    """Samples in a batch given as one array or a list of arrays."""
    return len(x[0]) if isinstance(x, list) else len(x)


def on_device(model, value):
    """``value`` (an array or a list of them) on the model's device."""
    return [to_model_device(model, v) for v in value] if isinstance(value, list) else to_model_device(model, value)


def common_length(arrays: list, where: str) -> int:
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f"{where}: the arrays have different numbers of samples ({sorted(lengths)}); they must match")
    return lengths.pop()


def structured_batch_source(model, x, y, sample_weight, batch_size: int, shuffle: bool, validation_split: float,
                            class_weight, steps_per_epoch, where: str):
    """``batches.batch_source`` for x and y that may be lists or dicts (see the module docstring).

    Returns the same (batches of one epoch, steps, held-out validation data) as batch_source,
    with each batch's x and y as the model wants them: an array, or a list in model order.
    Raises:
        ValueError: what ``line_up`` refuses, arrays of different lengths, class_weight for a
            model of several outputs (Keras refuses it too), or a Sequence / generator for a
            model of several inputs or outputs (not supported yet).
    """
    xs = None if is_batch_source(x) else line_up(x, model.input_names, "inputs", where)
    ys = None if is_batch_source(x) or y is None else line_up(y, model.output_names, "outputs", where)
    if xs is None and ys is None:
        if is_batch_source(x) and (len(model.input_names) > 1 or len(model.output_names) > 1):
            raise ValueError(f"{where}: a Sequence or generator for a model of several inputs or outputs is not "
                             f"supported yet in minidl; give the arrays as lists or dicts")
        return batch_source(model, x, y, sample_weight, batch_size, shuffle, validation_split, class_weight,
                            steps_per_epoch, where)
    if ys is not None and class_weight is not None:
        raise ValueError(f"{where}: class_weight is not supported for a model of several outputs (as in Keras); "
                         f"use sample_weight")
    xs = [_numpy(a) for a in xs] if xs is not None else [_numpy(x)]
    ys_arrays = [_numpy(a) for a in ys] if ys is not None else None
    n = common_length(xs + (ys_arrays or []), where)
    index = np.arange(n)
    batches_of, steps, split_off = batch_source(model, index, index if ys is not None else y, sample_weight,
                                                batch_size, shuffle, validation_split, class_weight,
                                                steps_per_epoch, where)

    def pick(arrays, several: bool, rows):
        picked = [a[rows] for a in arrays]
        return picked if several else picked[0]

    x_several, y_several = len(model.input_names) > 1, ys is not None and len(model.output_names) > 1

    def gathered():
        for rows, yb, wb in batches_of():
            rows = backend.to_numpy(rows)
            xb = on_device(model, pick(xs, x_several, rows))
            if ys_arrays is not None:
                yb = on_device(model, pick(ys_arrays, y_several, rows))
            yield xb, yb, wb
    if split_off is not None:
        rows = split_off[0]
        y_held = pick(ys_arrays, y_several, rows) if ys_arrays is not None else split_off[1]
        split_off = (pick(xs, x_several, rows), y_held) + tuple(split_off[2:])
    return gathered, steps, split_off


def _numpy(array) -> np.ndarray:
    array = getattr(array, "data", array)
    return backend.to_numpy(array) if backend.is_cupy_array(array) else np.asarray(array)
