"""The loops over whole data sets (fit, evaluate) of every Model (Sequential too), and what they
check and show.

``fit_loop`` is Keras 3's fit: per epoch, the training batches (``minidl.batches.Batches``
gives them as Keras' EpochIterator would), one step each with the callbacks around it, then
validation every ``validation_freq`` epochs on ``validation_data`` walked by its own Batches
(rewound each time, as Keras' evaluate rewinds its cached iterator), whose test-batch hooks
the fit's callbacks also get. ``evaluate_loop`` is evaluate's loop, shared by both.
When the epochs are done, an optimizer of ``use_ema`` puts its moving averages into the
weights (``finalize_variable_values``), as Keras 3's fit does before ``on_train_end``.

* The arguments fit / evaluate / predict share are checked once, each error naming the
  argument, the expectation and the value (a batch_size of 0 used to mean 32, -1 gave no batches).
* ``non_finite_problem`` is the guard of a training step: after backward and before the update
  it finds a loss or a gradient that is NaN or inf, so that fit can refuse that step and stop
  with the weights as they were (Keras' TerminateOnNaN looks only after the update).
* ``verbose``: 0 is silent, 1 a tqdm bar per epoch, 2 one line per epoch, both on stderr; "auto"
  is 1 on a terminal and 2 otherwise (a log file gets a line an epoch, not carriage returns).
"""
from __future__ import annotations

import math
import sys

import numpy as np
from tqdm.auto import tqdm

from minidl import backend, callbacks as callbacks_module
from minidl.batches import Batches, class_weight_table, data_batches, validation_arrays
from minidl.function import no_grad
from minidl.multi_io import batch_length


# --- arguments ----------------------------------------------------------------------------------
def positive_int(value, name: str, where: str) -> int:
    """``value`` as an int > 0; ValueError naming ``where`` ("fit") and ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{where}: {name} must be a positive int, got {value!r}")
    return int(value)


def non_negative_int(value, name: str, where: str) -> int:
    """``value`` as an int >= 0 (fit's initial_epoch); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{where}: {name} must be an int >= 0, got {value!r}")
    return int(value)


def check_batch_size(batch_size, where: str) -> int:
    """32 when omitted, as Keras; otherwise a positive int (0 used to mean 32, -1 gave no batches)."""
    return 32 if batch_size is None else positive_int(batch_size, "batch_size", where)


def resolve_verbose(verbose, where: str) -> int:
    """0, 1 or 2; "auto" is 1 (a progress bar) when stderr is a terminal, else 2 (a line an epoch)."""
    if isinstance(verbose, str) and verbose == "auto":
        try:
            return 1 if sys.stderr.isatty() else 2
        except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
            return 2
    if isinstance(verbose, (bool, int, np.integer)) and verbose in (0, 1, 2):
        return int(verbose)
    raise ValueError(f"{where}: verbose must be 'auto', 0, 1 or 2, got {verbose!r}")


# --- the finite-step guard ----------------------------------------------------------------------
def non_finite_problem(loss: float, weights: list) -> str | None:
    """What is not finite after backward: the loss, or the gradient of which weight; None if all is.

    Args:
        loss: the step's loss value.
        weights: the trainable weights, whose ``.grad`` (None for a weight the loss does not
            reach) is looked at.
    Returns:
        A phrase for the error message ("the loss became nan", "the gradient of dense/kernel
        ... became NaN or inf"), or None.
    """
    if not math.isfinite(loss):
        return f"the loss became {loss}"
    weights = [w for w in weights if w.grad is not None]
    if not weights:
        return None
    grads = [getattr(w.grad, "data", w.grad) for w in weights]
    xp = backend.get_array_module(grads[0])
    finite = backend.to_numpy(xp.stack([xp.isfinite(g).all() for g in grads]))  # one device sync
    bad = [w.name for w, ok in zip(weights, finite) if not ok]
    if not bad:
        return None
    more = f" (and {len(bad) - 1} more weights)" if len(bad) > 1 else ""
    return f"the gradient of {bad[0]}{more} became NaN or inf, with a finite loss of {loss:.6g}"


# --- what is shown and returned -----------------------------------------------------------------
class NoBar:
    """A progress bar that shows nothing, for verbose 0 and 2."""

    def update(self, n=1): pass
    def set_postfix(self, *args, **kwargs): pass
    def close(self): pass


def progress(steps: int | None, epoch: int | None, epochs: int | None, verbose: int, label: str | None = None):
    """A tqdm bar over ``steps`` batches on stderr when ``verbose`` is 1, else a NoBar.

    Args:
        steps: batches in the epoch (None when unknown: a generator).
        epoch, epochs: the 0-based epoch and the epoch count, for the "Epoch 3/10" label.
        label: the label instead, e.g. "evaluate".
    """
    if verbose != 1:
        return NoBar()
    desc = label or f"Epoch {epoch + 1}/{epochs}"
    return tqdm(total=steps, desc=desc, unit="batch", leave=True, dynamic_ncols=True, file=sys.stderr)


def write_epoch_line(epoch: int, epochs: int, logs: dict, verbose: int) -> None:
    """With ``verbose`` 2, one line for the finished epoch on stderr: "Epoch 1/2 - loss: 0.6931 - ..."."""
    if verbose == 2:
        line = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
        sys.stderr.write(f"Epoch {epoch + 1}/{epochs} - {line}\n")


def unpack(logs: dict):
    """Keras' return form: the loss alone when there are no metrics, else ``[loss, *metrics]``."""
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


# --- the loops ----------------------------------------------------------------------------------
def validation_freq_check(validation_freq, where: str = "fit"):
    """An int >= 1 (validate every that many epochs) or a list of 1-based epochs, as Keras."""
    if isinstance(validation_freq, (list, tuple)):
        for epoch in validation_freq:
            positive_int(epoch, "each epoch in validation_freq", where)
        return [int(epoch) for epoch in validation_freq]
    return positive_int(validation_freq, "validation_freq (an int or a list of epochs)", where)


def should_validate(epoch: int, validation_freq) -> bool:
    """Whether 0-based ``epoch`` validates: Keras counts validation_freq's epochs from 1."""
    if isinstance(validation_freq, list):
        return epoch + 1 in validation_freq
    return (epoch + 1) % validation_freq == 0


def fit_loop(model, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
             validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
             sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
             validation_batch_size=None, validation_freq=1):
    """``model.fit``: the arguments and the return value are Keras' (see minidl.model.Model.fit)."""
    verbose = resolve_verbose(verbose, "fit")
    if batch_size is not None:
        batch_size = positive_int(batch_size, "batch_size", "fit")
    if validation_batch_size is not None:
        validation_batch_size = positive_int(validation_batch_size, "validation_batch_size", "fit")
    epochs = positive_int(epochs, "epochs", "fit")
    initial_epoch = non_negative_int(initial_epoch, "initial_epoch", "fit")
    if steps_per_epoch is not None:
        steps_per_epoch = positive_int(steps_per_epoch, "steps_per_epoch", "fit")
    if validation_steps is not None:
        validation_steps = positive_int(validation_steps, "validation_steps", "fit")
    validation_freq = validation_freq_check(validation_freq)
    train, split_off = data_batches(model, x, y, sample_weight, batch_size, shuffle, validation_split,
                                    class_weight_table(class_weight, "fit"), steps_per_epoch, "fit")
    if split_off is not None and validation_data is None:
        validation_data = split_off
    validation = None
    if validation_data is not None:
        val_x, val_y, val_weight = validation_arrays(validation_data)
        validation, _ = data_batches(model, val_x, val_y, val_weight, validation_batch_size or batch_size,
                                     steps=validation_steps, where="fit (validation_data)")
    callback_list = callbacks_module.CallbackList(callbacks, add_history=True, model=model, epochs=epochs,
                                                  steps=train.steps, verbose=verbose)
    history = callback_list.history
    model.stop_training = False
    callback_list.on_train_begin({})
    # BackupAndRestore, finding a backup, sets the epoch to go on from (Keras' attribute name)
    resume_at, model._initial_epoch = getattr(model, "_initial_epoch", None), None
    for epoch in range(resume_at or initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch, {})
        epoch_logs = _train_epoch(model, train, epoch, epochs, verbose, callback_list)
        if validation is not None and should_validate(epoch, validation_freq):
            val = evaluate_loop(model, validation, callback_list)
            epoch_logs.update({f"val_{key}": value for key, value in val.items()})
        write_epoch_line(epoch, epochs, epoch_logs, verbose)
        callback_list.on_epoch_end(epoch, epoch_logs)
        if model.stop_training:
            break
    # With use_ema the weights become their moving averages once training is over: Keras 3 does
    # this at the end of every fit (after the last epoch, before on_train_end), so its callbacks,
    # evaluate and save afterwards all see the averages (keras/src/backend/*/trainer.py).
    finalize = getattr(model.optimizer, "finalize_variable_values", None)
    if finalize is not None:
        finalize(model.trainable_weights)
    callback_list.on_train_end({})
    model.history = history
    return history


def _train_epoch(model, train: Batches, epoch: int, epochs: int, verbose: int, callback_list) -> dict:
    """One epoch of steps; the epoch's logs, each the mean over its samples."""
    totals: dict[str, float] = {}
    seen = 0
    bar = progress(train.steps, epoch, epochs, verbose)
    try:
        for step, (xb, yb, wb) in enumerate(train.epoch()):
            callback_list.on_train_batch_begin(step, {})
            y_pred, loss, problem = model._train_step(xb, yb, wb, check_finite=model.terminate_on_nan)
            if problem is not None:
                raise FloatingPointError(f"fit: {problem} at epoch {epoch + 1}, batch {step + 1}; that "
                                         f"step was not applied, the weights are those before it. Lower "
                                         f"the learning rate, check the inputs for NaN, or "
                                         f"compile(terminate_on_nan=False) to carry on")
            logs = model._logs(loss, yb, y_pred)
            samples = batch_length(xb)  # xb may be a list, one array per input
            seen += samples
            for key, value in logs.items():
                totals[key] = totals.get(key, 0.0) + value * samples
            running = {key: value / seen for key, value in totals.items()}
            callback_list.on_train_batch_end(step, running)
            bar.set_postfix({k: f"{v:.4f}" for k, v in running.items()}, refresh=False)
            bar.update(1)
            if model.stop_training:
                break
    finally:
        bar.close()
    return {key: value / max(seen, 1) for key, value in totals.items()}


def evaluate_loop(model, batches: Batches, callback_list=None, bar=None) -> dict:
    """Loss and metrics over one epoch of ``batches`` (rewound first), each the mean over its
    samples; ``callback_list`` gets the test hooks, ``bar`` one update a batch."""
    callback_list = callback_list if callback_list is not None else callbacks_module.CallbackList()
    bar = bar if bar is not None else NoBar()
    batches.rewind()
    callback_list.on_test_begin({})
    totals: dict[str, float] = {}
    seen = 0
    with no_grad():
        for step, (xb, yb, wb) in enumerate(batches.epoch()):
            callback_list.on_test_batch_begin(step, {})
            y_pred = model(xb, training=False)
            logs = model._logs(float(model._total_loss(yb, y_pred, wb).data), yb, y_pred)
            samples = batch_length(xb)  # xb may be a list, one array per input
            seen += samples
            for key, value in logs.items():
                totals[key] = totals.get(key, 0.0) + value * samples
            callback_list.on_test_batch_end(step, {key: value / seen for key, value in totals.items()})
            bar.update(1)
    logs = {key: value / max(seen, 1) for key, value in totals.items()}
    callback_list.on_test_end(logs)
    return logs


def evaluate(model, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
             callbacks=None, return_dict=False):
    """``model.evaluate``, as Keras: ``[loss, *metrics]`` (the loss alone without metrics), or a dict."""
    verbose = resolve_verbose(verbose, "evaluate")
    if batch_size is not None:
        batch_size = positive_int(batch_size, "batch_size", "evaluate")
    if steps is not None:
        steps = positive_int(steps, "steps", "evaluate")
    batches, _ = data_batches(model, x, y, sample_weight, batch_size, steps=steps, where="evaluate")
    callback_list = callbacks_module.CallbackList(callbacks, model=model, epochs=1, steps=batches.steps,
                                                  verbose=verbose)
    bar = progress(batches.steps, None, None, verbose, "evaluate")
    try:
        logs = evaluate_loop(model, batches, callback_list, bar)
    finally:
        bar.close()
    return logs if return_dict else unpack(logs)
