"""The batches fit, evaluate and predict walk: (x, y, sample weight) on the model's device.

Data comes as arrays ``x, y`` (the last ``validation_split`` of them held out first, then
shuffled each epoch, as Keras) or as a ``minidl.data.Sequence`` / generator of ``(x, y[, weight])``
batches. Each sample's weight is its ``sample_weight`` times its class's ``class_weight`` (1 for a
class not named); a class_weight naming a class the labels cannot hold is refused before
training when all the labels are at hand, else at the batch that shows it.

The functions take the model (a ``minidl.models.Sequential``) for two things only: the device
of its weights, which every batch is moved to, and the width of its output, which says how many
classes there are.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import numpy as np

from minidl import backend
from minidl.data import Sequence, batch_indices


def to_model_device(model, array):
    """``array`` (or a Tensor's data) on the device of ``model``'s weights; None stays None."""
    if array is None:
        return None
    array = getattr(array, "data", array)
    weights = model.weights
    if weights and backend.is_cupy_array(weights[0].data):
        return backend.to_device(array, "gpu")
    if not weights and backend.current() == "cupy":
        return backend.to_device(array, "gpu")
    return backend.to_numpy(array) if backend.is_cupy_array(array) else np.asarray(array)


# --- class weights ------------------------------------------------------------------------------
def class_weight_table(class_weight, where: str):
    """``{class: weight}`` checked, as (sorted class indices, their weights); None stays None.

    Raises:
        ValueError: not a dict, a key that is not an int >= 0, or a weight that is not a finite
            number >= 0 (the range of the keys is checked against the labels later).
    """
    if class_weight is None:
        return None
    if not isinstance(class_weight, dict) or not class_weight:
        raise ValueError(f"{where}: class_weight must be a non-empty dict {{class index: weight}}, "
                         f"got {class_weight!r:.100}")
    keys, values = [], []
    for key, weight in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)) or key < 0:
            raise ValueError(f"{where}: class_weight keys must be class indices (ints >= 0), got {key!r:.40}")
        try:
            weight = float(weight)
        except (TypeError, ValueError):
            weight = math.nan
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"{where}: class_weight[{key}] must be a finite number >= 0, "
                             f"got {class_weight[key]!r:.40}")
        keys.append(int(key))
        values.append(weight)
    order = np.argsort(keys)
    return np.asarray(keys, dtype=np.int64)[order], np.asarray(values, dtype=np.float64)[order]


def class_count(model, labels) -> int | None:
    """How many classes the labels can name: the one-hot width, else the model's outputs
    (a single sigmoid unit is 2 classes); None while the model is not built."""
    if labels.ndim > 1 and labels.shape[-1] > 1:
        return int(labels.shape[-1])
    if model.built_input_shape is None or not model.layers:
        return None
    if len(model.output_shapes) != len(model.layers):  # built by a call, which records no shapes
        model.build(model.built_input_shape)
    units = model.output_shapes[-1][-1] if model.output_shapes[-1] else None
    return None if not isinstance(units, int) else max(units, 2)


def check_class_weight_range(model, class_weight, labels, where: str, num_classes: int | None = None) -> None:
    """Refuse a ``class_weight`` table naming a class >= ``num_classes`` (by default, ``class_count``)."""
    num_classes = num_classes or class_count(model, labels)
    keys = class_weight[0]
    if num_classes is not None and keys[-1] >= num_classes:
        unknown = [int(k) for k in keys if k >= num_classes]
        raise ValueError(f"{where}: class_weight names class{'es' if len(unknown) > 1 else ''} "
                         f"{', '.join(map(str, unknown[:5]))}{' ...' if len(unknown) > 5 else ''}, but the "
                         f"labels have {num_classes} classes (0 to {num_classes - 1})")


def sample_weights(model, y, sample_weight, class_weight, where: str):
    """Each sample's weight, shape (batch,): ``sample_weight`` times its class's in ``class_weight``
    (from class_weight_table), 1 for a class it does not name; on the model's device.
    Without class_weight, ``sample_weight`` as given (None for none)."""
    if class_weight is None:
        return sample_weight
    labels = backend.to_numpy(y)
    check_class_weight_range(model, class_weight, labels, where)
    labels = labels.argmax(-1) if labels.ndim > 1 and labels.shape[-1] > 1 else labels.reshape(len(labels))
    labels = labels.astype(np.int64)
    keys, values = class_weight
    # a lookup in the sorted keys, not a table indexed by label: nothing sized by a key
    index = np.minimum(np.searchsorted(keys, labels), len(keys) - 1)
    weights = np.where(keys[index] == labels, values[index], 1.0)
    if sample_weight is not None:
        weights = weights * backend.to_numpy(sample_weight)
    return to_model_device(model, weights)


# --- whole data sets ----------------------------------------------------------------------------
def batch_source(model, x, y, sample_weight, batch_size: int, shuffle: bool, validation_split: float,
                 class_weight, steps_per_epoch: int | None,
                 where: str) -> tuple[Callable[[], Iterator[tuple]], int | None, tuple | None]:
    """The batches of one epoch, and what is needed to walk them.

    Args:
        model: the Sequential the batches are for (its device, its number of classes).
        x, y, sample_weight: arrays of (samples, ...), or x a Sequence / generator of batches
            and y None.
        class_weight: a table from ``class_weight_table``, or None.
        steps_per_epoch: at most this many batches of a Sequence or generator (None: all).
        where: the caller's name for error messages ("fit").
    Returns:
        (a function giving one epoch's batches as (x, y, weight) on the model's device, the
        number of steps (None when unknown), the held-out (x, y[, weight]) of validation_split
        or None).
    """
    if is_batch_source(x):
        if y is not None:
            raise ValueError(f"{where}: y must be None when x is a Sequence or generator of batches")

        def from_source():
            items = (x[i] for i in range(len(x))) if isinstance(x, Sequence) else x
            for count, item in enumerate(items):
                if steps_per_epoch is not None and count >= steps_per_epoch:
                    break
                xb, yb, wb = (as_tuple(item) + (None,))[:3]
                yield (to_model_device(model, xb), to_model_device(model, yb),
                       sample_weights(model, to_model_device(model, yb), to_model_device(model, wb),
                                      class_weight, where))
        steps = len(x) if isinstance(x, Sequence) else steps_per_epoch
        return from_source, steps, None
    if x is None or y is None:
        raise ValueError(f"{where}: both x and y are needed (or x as a Sequence of batches)")
    x = backend.to_numpy(getattr(x, "data", x)) if backend.is_cupy_array(getattr(x, "data", x)) else np.asarray(getattr(x, "data", x))
    y = backend.to_numpy(getattr(y, "data", y)) if backend.is_cupy_array(getattr(y, "data", y)) else np.asarray(getattr(y, "data", y))
    if len(x) != len(y):
        raise ValueError(f"{where}: x has {len(x)} samples but y has {len(y)}; they must match")
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight)
        if len(sample_weight) != len(x):
            raise ValueError(f"{where}: sample_weight has {len(sample_weight)} entries for {len(x)} samples")
    split_off = None
    if validation_split:
        if not 0 < validation_split < 1:
            raise ValueError(f"{where}: validation_split must be in (0, 1), got {validation_split}")
        cut = int(len(x) * (1 - validation_split))
        split_off = (x[cut:], y[cut:]) + ((sample_weight[cut:],) if sample_weight is not None else ())
        x, y = x[:cut], y[:cut]
        sample_weight = sample_weight[:cut] if sample_weight is not None else None
    if len(x) == 0:
        raise ValueError(f"{where}: no samples to use")
    if class_weight is not None:  # all the labels are here: refuse an unknown class before training
        num_classes = class_count(model, y)
        if num_classes is None:  # a model not built yet: the classes are those the labels hold
            num_classes = max(int(y.max()) + 1, 1)
        check_class_weight_range(model, class_weight, y, where, num_classes)

    def from_arrays():
        for index in batch_indices(len(x), batch_size, shuffle):
            wb = sample_weight[index] if sample_weight is not None else None
            yb = to_model_device(model, y[index])
            yield (to_model_device(model, x[index]), yb,
                   sample_weights(model, yb, to_model_device(model, wb), class_weight, where))
    return from_arrays, math.ceil(len(x) / batch_size), split_off


# --- what a data argument is --------------------------------------------------------------------
def as_tuple(item) -> tuple:
    """A batch as a tuple: (x, y[, weight]) stays, a lone x becomes (x,)."""
    return tuple(item) if isinstance(item, (tuple, list)) else (item,)


def is_generator(x: Any) -> bool:
    return hasattr(x, "__next__")


def is_batch_source(x: Any) -> bool:
    """True for a Sequence or a generator of batches, False for arrays."""
    return isinstance(x, Sequence) or is_generator(x)
