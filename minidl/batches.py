"""The batches fit, evaluate and predict walk: (x, y, sample weight) on the model's device.

Data comes as arrays ``x, y`` (the last ``validation_split`` of them held out first, then
shuffled each pass, as Keras), as a ``minidl.data.Sequence`` (Keras' PyDataset), as a Python
generator or iterator, or as any other iterable of batches such as a torch ``DataLoader``; a
batch is ``(x, y)`` or ``(x, y, sample_weight)``. Each sample's weight is its ``sample_weight``
times its class's ``class_weight`` (1 for a class not named); a class_weight naming a class the
labels cannot hold is refused before training when all the labels are at hand, else at the
batch that shows it.

``Batches`` walks a source epoch by epoch exactly as Keras 3's ``EpochIterator`` does, which
tests/minidl/test_batches.py checks against counts Keras produced:

* With ``steps_per_epoch``, an epoch takes that many batches and the next epoch goes on where
  it stopped; when a source of known length (arrays, a Sequence, a DataLoader) is used up the
  epoch ends early (a warning says so) and the next starts a new pass. So 5 batches with
  ``steps_per_epoch=3`` give epochs of 3, 2, 3, ... batches. Without it an epoch is one pass.
* A generator cannot be rewound. Keras looks at its first two batches before training (to learn
  their shapes) and keeps them: every new pass over the generator starts with those two again,
  then takes what the generator still has. A finite generator therefore gives 2 batches in each
  epoch after it is used up, not 0; with ``steps_per_epoch`` it is pulled exactly
  ``steps_per_epoch * epochs`` times.
* A Sequence's batches are taken in a new random order each pass when ``shuffle`` is on (Keras
  shuffles PyDataset batches), and its ``on_epoch_end`` is called when an epoch's batches are
  done. Two things Keras does are left out on purpose: it calls ``on_epoch_end`` once more before
  the first epoch (and before each validation), and it fetches the first batch of a Sequence or
  DataLoader once more to build the model before training.

Several inputs or outputs: x and y may be lists or dicts of arrays (Keras' forms), lined up
with the model's inputs and outputs by ``minidl.multi_io``; arrays are then cut by the same
sample indices, and a Sequence's or generator's batches are lined up one by one. sample_weight
is then one array shared by every output, or a list or dict of one array per output
(``weights_in_order``); class_weight is refused for several outputs, as Keras refuses it.

The functions take the model (a ``minidl.model.Model``) for three things only: the device of
its weights, which every batch is moved to, the width of its output, which says how many
classes there are, and its input and output names, which structured data is lined up with.
"""
from __future__ import annotations

import itertools
import math
import warnings
from typing import Any, Iterator

import numpy as np

from minidl import backend, random
from minidl.data import Sequence, batch_indices
from minidl.multi_io import arrays_of, as_given, as_numpy, batch_length, common_length, in_model_order, line_up, take


def to_model_device(model, array):
    """``array`` (or a Tensor's data) on the device of ``model``'s weights; None stays None."""
    if array is None:
        return None
    array = getattr(array, "data", array)
    if not isinstance(array, np.ndarray) and not backend.is_cupy_array(array):
        array = np.asarray(array)  # a torch tensor, a list
    weights = model.weights
    if weights and backend.is_cupy_array(weights[0].data):
        return backend.to_device(array, "gpu")
    if not weights and backend.current() == "cupy":
        return backend.to_device(array, "gpu")
    return backend.to_numpy(array) if backend.is_cupy_array(array) else np.asarray(array)


def on_device(model, value):
    """``value`` (an array, or a list or dict of them) on the model's device."""
    if isinstance(value, dict):
        return {key: to_model_device(model, v) for key, v in value.items()}
    return [to_model_device(model, v) for v in value] if isinstance(value, list) else to_model_device(model, value)


def _names(model, which: str) -> list[str]:
    return list(getattr(model, which, None) or ["input" if which == "input_names" else "output"])


def in_order(model, x, y, where: str) -> tuple:
    """x and y as the model takes them (one array, or a list in input / output order); x of a
    subclassed model as it was given (a list or dict of arrays stays one, as Keras)."""
    if getattr(model, "is_subclassed", False):
        x = as_given(x)
    else:
        x = in_model_order(x, _names(model, "input_names"), "inputs", where)
    y = None if y is None else in_model_order(y, _names(model, "output_names"), "outputs", where)
    return x, y


def weights_in_order(model, sample_weight, where: str):
    """``sample_weight`` as the losses take it: one array (shared by every output), or, for a
    model of several outputs, a list in output order of one array per output (None: unweighted),
    from a list in that order or a dict by output name, as Keras takes them."""
    if sample_weight is None:
        return None
    names = _names(model, "output_names")
    if len(names) == 1:
        return as_numpy(in_model_order(sample_weight, names, "sample weights", where))
    if isinstance(sample_weight, (list, tuple, dict)):
        return as_numpy(line_up(sample_weight, names, "sample weights (one array per output)", where))
    return as_numpy(sample_weight)


def refuse_class_weight_for_several(y, class_weight, where: str) -> None:
    if class_weight is not None and isinstance(y, list):
        raise ValueError(f"{where}: class_weight is not supported for a model of several outputs (as in "
                         f"Keras); use sample_weight")


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
# Keras looks at this many batches of a generator before training, and gives them again at the
# start of every new pass (keras/src/trainers/data_adapters/generator_data_adapter.py).
GENERATOR_PEEK = 2


class _Arrays:
    """Arrays x, y[, weights] cut into batches of ``batch_size``, in a new order each pass when
    shuffled; x and y each one array or a list of them (several inputs / outputs)."""

    def __init__(self, x, y, sample_weight, batch_size: int, shuffle: bool):
        self.x, self.y, self.sample_weight = x, y, sample_weight
        self.batch_size, self.shuffle = batch_size, shuffle
        self.num_batches = math.ceil(batch_length(x) / batch_size)

    def new_pass(self) -> Iterator[tuple]:
        for index in batch_indices(batch_length(self.x), self.batch_size, self.shuffle):
            yield take(self.x, index), take(self.y, index), take(self.sample_weight, index)

    def on_epoch_end(self) -> None:
        pass


class _SequenceBatches:
    """A Sequence: its batches by index, in a new random order each pass when shuffled."""

    def __init__(self, sequence, shuffle: bool):
        self.sequence, self.shuffle = sequence, shuffle
        self.num_batches = len(sequence)

    def new_pass(self) -> Iterator:
        count = len(self.sequence)
        order = random.generator().permutation(count) if self.shuffle else range(count)
        return (self.sequence[int(i)] for i in order)

    def on_epoch_end(self) -> None:
        self.sequence.on_epoch_end()


class _GeneratorBatches:
    """A generator or iterator: its first GENERATOR_PEEK batches are taken at once and kept, and
    every pass starts with them, as Keras does."""

    def __init__(self, generator):
        self.generator = generator
        self.peeked = list(itertools.islice(generator, GENERATOR_PEEK))
        self.num_batches = None

    def new_pass(self) -> Iterator:
        return itertools.chain(self.peeked, self.generator)

    def on_epoch_end(self) -> None:
        pass


class _IterableBatches:
    """Any other iterable of batches (a torch DataLoader): ``iter()`` of it starts each pass."""

    def __init__(self, iterable):
        self.iterable = iterable
        try:
            self.num_batches = len(iterable)
        except TypeError:  # a DataLoader over an IterableDataset has no length
            self.num_batches = None

    def new_pass(self) -> Iterator:
        return iter(self.iterable)

    def on_epoch_end(self) -> None:
        pass


class Batches:
    """The batches of a data source, epoch by epoch, as Keras' EpochIterator gives them (see
    the module docstring); each as (x, y, weight) on the model's device.

    Attributes:
        num_batches: batches in one pass (None while unknown: a generator not yet used up).
        steps: batches in one epoch as far as known (steps_per_epoch, else num_batches).
    """

    def __init__(self, model, source, steps_per_epoch: int | None, class_weight, where: str):
        self.model, self.source, self.class_weight, self.where = model, source, class_weight, where
        self.steps_per_epoch = steps_per_epoch
        self.num_batches = source.num_batches
        self._iterator = None
        self._taken = 0  # batches taken from the current pass

    @property
    def steps(self) -> int | None:
        return self.steps_per_epoch or self.num_batches

    def rewind(self) -> None:
        """Start the next epoch at a new pass (evaluate does, before each validation)."""
        self._iterator, self._taken = None, 0

    def epoch(self) -> Iterator[tuple]:
        """One epoch's batches; the source's ``on_epoch_end`` is called when they are done."""
        steps = self.steps
        if self._iterator is None or self.steps_per_epoch is None:
            self._iterator, self._taken = self.source.new_pass(), 0
        given = 0
        while steps is None or given < steps:
            if self.num_batches and self._taken >= self.num_batches:
                self._warn(given, "its last pass was used up")
                break
            try:
                item = next(self._iterator)
            except StopIteration:
                first_end = self.num_batches is None
                if first_end:  # now the length of a generator is known
                    self.num_batches = self._taken
                if (self.steps_per_epoch or not first_end) and given < self.steps:
                    self._warn(given, "the data ran out")
                self._iterator = None
                break
            self._taken += 1
            given += 1
            yield self._batch(item)
        if self.num_batches and self._taken >= self.num_batches:
            self._iterator = None  # the next epoch starts a new pass
        self.source.on_epoch_end()

    def _warn(self, given: int, why: str) -> None:
        if self.steps_per_epoch or isinstance(self.source, _GeneratorBatches):
            warnings.warn(f"{self.where}: an epoch got {given} batches where {self.steps} were asked, "
                          f"because {why}; "
                          f"training goes on (as in Keras). Give steps_per_epoch at most the batches "
                          f"in the data, or a generator that does not end", stacklevel=3)

    def _batch(self, item) -> tuple:
        xb, yb, wb = (as_tuple(item) + (None, None))[:3]
        model = self.model
        xb, yb = in_order(model, xb, yb, self.where)
        refuse_class_weight_for_several(yb, self.class_weight, self.where)
        yb = on_device(model, yb)
        return (on_device(model, xb), yb,
                sample_weights(model, yb, on_device(model, weights_in_order(model, wb, self.where)),
                               self.class_weight, self.where))


def data_batches(model, x, y=None, sample_weight=None, batch_size: int | None = None, shuffle: bool = False,
                 validation_split: float = 0.0, class_weight=None, steps: int | None = None,
                 where: str = "fit", need_y: bool = True) -> tuple[Batches, tuple | None]:
    """The Batches of a data argument of fit / evaluate / predict, and the part held out.

    Args:
        model: the Model the batches are for (its device, its number of classes, its input and
            output names).
        x, y, sample_weight: arrays of (samples, ...), x and y for several inputs / outputs a
            list (in model order) or a dict (by name) of them; or x a Sequence, a generator or
            iterator, or another iterable of (x, y[, weight]) batches (a torch DataLoader), and y None.
        batch_size: samples per batch of arrays; None: 32, or ``ceil(samples / steps)`` when
            ``steps`` is given (as Keras).
        validation_split: hold out the LAST fraction of the arrays before shuffling (as Keras).
        class_weight: a table from ``class_weight_table``, or None.
        steps: batches per epoch (fit's steps_per_epoch, evaluate's steps); None: one pass.
        where: the caller's name for error messages ("fit").
        need_y: False for predict, which takes x alone.
    Returns:
        (the Batches, the held-out (x, y[, weight]) of validation_split or None).
    """
    if is_batch_source(x):
        if y is not None or sample_weight is not None:
            raise ValueError(f"{where}: y and sample_weight must be None when x is a {type(x).__name__} of "
                             f"batches; each batch carries its own (x, y[, sample_weight])")
        if validation_split:
            raise ValueError(f"{where}: validation_split needs arrays; with a {type(x).__name__} of batches "
                             f"give validation_data instead")
        if isinstance(x, Sequence):
            source = _SequenceBatches(x, shuffle)
        elif is_generator(x):
            source = _GeneratorBatches(x)
        else:
            source = _IterableBatches(x)
        return Batches(model, source, steps, class_weight, where), None
    if x is None or (need_y and y is None):
        raise ValueError(f"{where}: both x and y are needed (or x as a Sequence, generator or DataLoader "
                         f"of batches)")
    x, y = in_order(model, x, y, where)
    x, y = as_numpy(x), as_numpy(y)
    if isinstance(x, (list, dict)) or isinstance(y, list):
        samples = common_length(arrays_of(x) + arrays_of(y), where)
    else:
        samples = len(x)
        if y is not None and samples != len(y):
            raise ValueError(f"{where}: x has {samples} samples but y has {len(y)}; they must match")
    refuse_class_weight_for_several(y, class_weight, where)
    if sample_weight is not None:
        sample_weight = weights_in_order(model, sample_weight, where)
        for k, weights in enumerate(arrays_of(sample_weight)):
            if weights is not None and len(weights) != samples:
                which = f" (output {k})" if isinstance(sample_weight, list) else ""
                raise ValueError(f"{where}: sample_weight{which} has {len(weights)} entries for {samples} samples")
    split_off = None
    if validation_split:
        if not 0 < validation_split < 1:
            raise ValueError(f"{where}: validation_split must be in (0, 1), got {validation_split}")
        cut = int(samples * (1 - validation_split))
        held, kept = slice(cut, None), slice(None, cut)
        split_off = (take(x, held), take(y, held)) + ((take(sample_weight, held),) if sample_weight is not None else ())
        x, y, sample_weight = take(x, kept), take(y, kept), take(sample_weight, kept)
        samples = cut
    if samples == 0:
        raise ValueError(f"{where}: no samples to use")
    if class_weight is not None:  # all the labels are here: refuse an unknown class before training
        num_classes = class_count(model, y)
        if num_classes is None:  # a model not built yet: the classes are those the labels hold
            num_classes = max(int(y.max()) + 1, 1)
        check_class_weight_range(model, class_weight, y, where, num_classes)
    if batch_size is None:
        batch_size = math.ceil(samples / steps) if steps else 32
    return Batches(model, _Arrays(x, y, sample_weight, batch_size, shuffle), steps, class_weight, where), split_off


def validation_arrays(validation_data, where: str = "fit") -> tuple:
    """``validation_data`` as (x, y, sample_weight): a tuple (x, y) or (x, y, weights) unpacked,
    a source of batches as (source, None, None)."""
    if isinstance(validation_data, (tuple, list)):
        if len(validation_data) not in (2, 3):
            raise ValueError(f"{where}: validation_data must be (x, y) or (x, y, sample_weight), or a "
                             f"Sequence / generator / DataLoader of batches; got a "
                             f"{type(validation_data).__name__} of {len(validation_data)} items")
        return (tuple(validation_data) + (None,))[:3]
    if not is_batch_source(validation_data):
        raise ValueError(f"{where}: validation_data must be (x, y) or (x, y, sample_weight), or a Sequence / "
                         f"generator / DataLoader of batches; got {type(validation_data).__name__}")
    return validation_data, None, None


# --- what a data argument is --------------------------------------------------------------------
def as_tuple(item) -> tuple:
    """A batch as a tuple: (x, y[, weight]) stays, a lone x becomes (x,)."""
    return tuple(item) if isinstance(item, (tuple, list)) else (item,)


def is_generator(x: Any) -> bool:
    return hasattr(x, "__next__")


def is_batch_source(x: Any) -> bool:
    """True for a Sequence, a generator or iterator, or another iterable of batches (a torch
    DataLoader); False for arrays (NumPy, CuPy, a Tensor, a torch tensor, a list)."""
    if isinstance(x, Sequence) or is_generator(x):
        return True
    return (hasattr(x, "__iter__") and not isinstance(x, (list, tuple, dict, str, bytes))
            and not hasattr(x, "shape") and not hasattr(x, "__array__"))
