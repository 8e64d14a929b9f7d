"""Data for models of several inputs or outputs: lists or dicts of arrays, batched by sample index.

Keras takes ``x`` (and ``y``) as one array, a list in the order of ``model.inputs`` (outputs), or
a dict keyed by input (output) name. ``minidl.batches`` lines such a structure up with the model
once (``in_model_order``: one array, or a list of arrays in model order) and then cuts every
array of it by the same sample indices (``take``), so that shuffling, the validation split and
weighting have one definition for one array and for many:

    x = {"b": b (n, 7), "a": a (n, 4)}  ──in_model_order──►  [a, b]  ──take(rows)──►  [a[rows], b[rows]]

The batches of a Sequence, a generator or a DataLoader are lined up the same way, one by one.
"""
from __future__ import annotations

import numpy as np

from minidl import backend


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


def in_model_order(value, names: list[str], what: str, where: str):
    """``value`` as the model takes it: one array for a model of one input (output), else a list
    of arrays in model order (``line_up``'s checks and errors)."""
    lined = line_up(value, names, what, where)
    if lined is None:  # one array; a Python list of rows becomes one, so it is not taken for a structure
        return np.asarray(value) if isinstance(value, (list, tuple)) else value
    return lined if len(lined) > 1 else lined[0]


def as_given(value):
    """x for a subclassed model, whose ``call`` takes the structure it is given (as Keras): a
    dict of arrays stays a dict, a list or tuple of arrays becomes a list; a list of plain
    rows (numbers) is one array."""
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, (list, tuple)):
        if value and all(hasattr(v, "shape") for v in value):
            return list(value)
        return np.asarray(value)
    return value


def batch_length(x) -> int:
    """Samples in a batch given as one array, a list of arrays or a dict of them."""
    if isinstance(x, dict):
        x = next(iter(x.values()))
    return len(x[0]) if isinstance(x, list) else len(x)


def take(value, rows):
    """The samples ``rows`` (indices or a slice) of one array or of each array of a list; None stays None."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {key: a[rows] for key, a in value.items()}
    return [None if a is None else a[rows] for a in value] if isinstance(value, list) else value[rows]


def as_numpy(value):
    """One array, or each array of a list, as NumPy (a Tensor's data, a CuPy or torch array, a list of rows)."""
    if isinstance(value, dict):
        return {key: _numpy(a) for key, a in value.items()}
    if isinstance(value, list):
        return [None if a is None else _numpy(a) for a in value]
    return None if value is None else _numpy(value)


def common_length(arrays: list, where: str) -> int:
    """The number of samples every array in ``arrays`` has (ValueError when they differ)."""
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f"{where}: the arrays have different numbers of samples ({sorted(lengths)}); they must match")
    return lengths.pop()


def arrays_of(value) -> list:
    """The arrays of one array or of a list of them (none for None)."""
    if isinstance(value, dict):
        return list(value.values())
    return [] if value is None else (list(value) if isinstance(value, list) else [value])


def _numpy(array) -> np.ndarray:
    array = getattr(array, "data", array)
    return backend.to_numpy(array) if backend.is_cupy_array(array) else np.asarray(array)
