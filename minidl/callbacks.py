"""Callbacks: hooks that ``fit`` calls around epochs and batches, with Keras 3's names and rules.

``fit`` calls, on every callback in its list (a ``CallbackList`` fans the calls out)::

    set_model(model)
    on_train_begin(logs)
      on_epoch_begin(epoch, logs)
        on_train_batch_begin(batch, logs) ... on_train_batch_end(batch, logs)   per batch
        on_test_begin(logs) ... on_test_end(logs)                               validation
      on_epoch_end(epoch, logs)         logs = {"loss": ..., "accuracy": ..., "val_loss": ...}
    on_train_end(logs)

A callback steers training through the model: it sets ``model.stop_training = True`` (early
stopping), sets ``model.optimizer.learning_rate`` (ReduceLROnPlateau), and calls
``model.get_weights()/set_weights()``, ``model.save(path)`` and ``model.save_weights(path)``.
Epochs and batches are counted from 0, as in Keras; file names and messages count from 1.
The library does not print: where Keras prints with ``verbose=1``, these callbacks log to the
``minidl`` logger (``logging.getLogger("minidl")``), and missing monitored values warn.
"""
from __future__ import annotations

import collections.abc
import csv
import logging
import math
import os
import shutil
import warnings
from typing import Any

import numpy as np

from minidl import saving

logger = logging.getLogger("minidl")


class Callback:
    """Base class: every hook does nothing. Attributes ``model`` and ``params`` are set by fit."""

    def __init__(self):
        self.model = None
        self.params: dict = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_batch_begin(self, batch, logs=None): pass
    def on_batch_end(self, batch, logs=None): pass

    # Keras 3 routes the train-batch hooks to the older on_batch_* names by default.
    def on_train_batch_begin(self, batch, logs=None): self.on_batch_begin(batch, logs=logs)
    def on_train_batch_end(self, batch, logs=None): self.on_batch_end(batch, logs=logs)
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass


def _pythonify(logs: dict | None) -> dict:
    """Logs with NumPy/CuPy scalars and 0-d arrays turned into Python floats (as Keras does)."""
    if not logs:
        return {} if logs is None else logs
    out = {}
    for key, value in logs.items():
        if hasattr(value, "item") and getattr(value, "ndim", 0) == 0 and not isinstance(value, str):
            value = value.item()
        out[key] = value
    return out


class CallbackList(Callback):
    """Calls each hook on every callback in order; optionally appends a History (last, so it
    records what other callbacks add to the logs, e.g. ReduceLROnPlateau's learning_rate).

    Args:
        callbacks: a list of Callbacks (or None).
        add_history: append a History if the list has none; it is ``self.history``.
        model: the model to give every callback.
        **params: passed to every callback's ``set_params`` (epochs, steps, verbose).
    """

    def __init__(self, callbacks=None, add_history: bool = False, model=None, **params):
        super().__init__()
        self.callbacks = list(callbacks or [])
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f"callbacks must be Callback instances, got {callback!r}")
        self.history = next((c for c in self.callbacks if isinstance(c, History)), None)
        if self.history is None and add_history:
            self.history = History()
            self.callbacks.append(self.history)
        if model is not None:
            self.set_model(model)
        self.set_params(params)

    def set_model(self, model) -> None:
        self.model = model
        if self.history is not None:
            model.history = self.history
        for callback in self.callbacks:
            callback.set_model(model)

    def set_params(self, params: dict) -> None:
        self.params = params
        for callback in self.callbacks:
            callback.set_params(params)

    def append(self, callback: Callback) -> None:
        self.callbacks.append(callback)
        if self.model is not None:
            callback.set_model(self.model)
        callback.set_params(self.params)

    def _call(self, hook: str, *args, logs=None) -> None:
        logs = _pythonify(logs)
        for callback in self.callbacks:
            getattr(callback, hook)(*args, logs)

    def on_train_begin(self, logs=None): self._call("on_train_begin", logs=logs)
    def on_train_end(self, logs=None): self._call("on_train_end", logs=logs)
    def on_epoch_begin(self, epoch, logs=None): self._call("on_epoch_begin", epoch, logs=logs)
    def on_epoch_end(self, epoch, logs=None): self._call("on_epoch_end", epoch, logs=logs)
    def on_batch_begin(self, batch, logs=None): self._call("on_batch_begin", batch, logs=logs)
    def on_batch_end(self, batch, logs=None): self._call("on_batch_end", batch, logs=logs)
    def on_train_batch_begin(self, batch, logs=None): self._call("on_train_batch_begin", batch, logs=logs)
    def on_train_batch_end(self, batch, logs=None): self._call("on_train_batch_end", batch, logs=logs)
    def on_test_begin(self, logs=None): self._call("on_test_begin", logs=logs)
    def on_test_end(self, logs=None): self._call("on_test_end", logs=logs)
    def on_test_batch_begin(self, batch, logs=None): self._call("on_test_batch_begin", batch, logs=logs)
    def on_test_batch_end(self, batch, logs=None): self._call("on_test_batch_end", batch, logs=logs)
    def on_predict_begin(self, logs=None): self._call("on_predict_begin", logs=logs)
    def on_predict_end(self, logs=None): self._call("on_predict_end", logs=logs)
    def on_predict_batch_begin(self, batch, logs=None): self._call("on_predict_batch_begin", batch, logs=logs)
    def on_predict_batch_end(self, batch, logs=None): self._call("on_predict_batch_end", batch, logs=logs)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)


class History(Callback):
    """Records the logs of every epoch: ``history.history["loss"][epoch]``; ``history.epoch``
    lists the epochs seen. ``fit`` returns it, and sets ``model.history`` to it."""

    def __init__(self):
        super().__init__()
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self


# --- monitoring a logged value ------------------------------------------------------------------
_HIGHER_IS_BETTER = ("acc", "auc", "precision", "recall", "f1")


class MonitorCallback(Callback):
    """Shared by callbacks that watch one logged value (Keras' MonitorCallback).

    ``mode="auto"`` minimises losses and errors and maximises accuracies ("acc" in the name),
    AUC, precision, recall and F1; any other name needs ``mode="min"`` or ``"max"``.
    An improvement means beating the reference by more than ``min_delta``.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", baseline: float | None = None,
                 min_delta: float = 0.0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"{type(self).__name__}: mode {mode!r} is unknown, falling back to 'auto'",
                          stacklevel=3)
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(min_delta)
        self.monitor_op = None  # "min" or "max", settled on the first epoch as Keras does

    def _set_monitor_op(self) -> None:
        if self.mode != "auto":
            self.monitor_op = self.mode
        else:
            name = self.monitor.removeprefix("val_")
            if name == "loss" or name.endswith("loss") or "error" in name or name in (
                    "mse", "mae", "mean_squared_error", "mean_absolute_error"):
                self.monitor_op = "min"
            elif any(word in name for word in _HIGHER_IS_BETTER):
                self.monitor_op = "max"
            else:
                raise ValueError(f"{type(self).__name__}: cannot tell whether {self.monitor!r} should "
                                 f"be minimised or maximised; pass mode='min' or mode='max'")
        self._signed_delta = -self.min_delta if self.monitor_op == "min" else self.min_delta

    def _is_improvement(self, value: float, reference: float | None) -> bool:
        if reference is None:
            return True
        if self.monitor_op == "min":
            return value - self._signed_delta < reference
        return value - self._signed_delta > reference

    def _monitored(self, logs: dict | None, what: str):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(f"{what} is conditioned on {self.monitor!r}, which is not in the logs; "
                          f"available: {', '.join(logs) or 'none'}", stacklevel=3)
        return value


class EarlyStopping(MonitorCallback):
    """Stop training when the monitored value has stopped improving (Keras' rules).

    Args:
        monitor: the logged value to watch, e.g. "val_loss", "val_accuracy".
        min_delta: smallest change that counts as an improvement.
        patience: epochs without improvement after which training stops.
        mode: "min", "max" or "auto" (from the name).
        baseline: training also stops if the value does not beat this within ``patience``.
        restore_best_weights: at the end of training, put back the weights of the best epoch
            (only when at least one epoch was watched).
        start_from_epoch: epochs to wait before watching at all (warm-up).
    Attributes:
        stopped_epoch: the epoch (from 0) at which training was stopped, 0 if it was not.
        best_epoch: the epoch of the best value. best: the best value.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: float | None = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0):
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0

    def on_train_begin(self, logs=None):
        # fresh state, so one instance can serve several fit() calls
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self._monitored(logs, "Early stopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()  # the first watched epoch is the best yet
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # restart the wait only when beating both the baseline and the previous best
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            logger.info("Epoch %d: early stopping", self.stopped_epoch + 1)
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                logger.info("Restoring model weights from the end of the best epoch: %d.", self.best_epoch + 1)
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(MonitorCallback):
    """Save the model (or only its weights) after every epoch, or only when it improved.

    ``filepath`` may hold ``str.format`` fields filled from the epoch (counted from 1) and the
    logs, as Keras: ``"ckpt/model-{epoch:02d}-{val_loss:.2f}.npz"``.

    Args:
        filepath: where to save (folders are created).
        monitor, mode: the value that decides "best" (see MonitorCallback).
        save_best_only: save only when the monitored value improved on the best so far.
        save_weights_only: ``model.save_weights(path)`` instead of ``model.save(path)``.
        save_freq: "epoch", or save every this many batches.
        initial_value_threshold: a first "best" that must be beaten before the first save.
    """

    def __init__(self, filepath, monitor: str = "val_loss", verbose: int = 0, save_best_only: bool = False,
                 save_weights_only: bool = False, mode: str = "auto", save_freq="epoch",
                 initial_value_threshold: float | None = None):
        super().__init__(monitor, mode, initial_value_threshold)
        self.filepath = os.fspath(filepath)
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(f"ModelCheckpoint: save_freq must be 'epoch' or a positive int, got {save_freq!r}")
        self.save_freq = save_freq
        self._batches_since_save = 0
        self._last_batch = None
        self._current_epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        # a batch index that does not grow means a new epoch began
        added = batch + 1 if self._last_batch is None or batch <= self._last_batch else batch - self._last_batch
        self._last_batch = batch
        self._batches_since_save += added
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._save(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        if self.save_freq == "epoch":
            self._save(epoch, None, logs)

    def _file_path(self, epoch: int, batch: int | None, logs: dict) -> str:
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except (KeyError, IndexError, ValueError) as error:
            raise KeyError(f"ModelCheckpoint: cannot format the file path {self.filepath!r} from the "
                           f"epoch and logs ({', '.join(logs) or 'none'}): {error!r}") from None

    def _should_save(self, epoch: int, logs: dict, filepath: str) -> bool:
        if not self.save_best_only:
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"ModelCheckpoint: can save the best model only with {self.monitor!r} in "
                          f"the logs; saving every epoch", stacklevel=3)
            return True
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                logger.info("Epoch %d: %s improved from %s to %.5f, saving model to %s", epoch + 1,
                            self.monitor, "None" if self.best is None else f"{self.best:.5f}", current, filepath)
            self.best = current
            return True
        if self.verbose > 0:
            logger.info("Epoch %d: %s did not improve from %.5f", epoch + 1, self.monitor, self.best)
        return False

    def _save(self, epoch: int, batch: int | None, logs) -> None:
        logs = logs or {}
        filepath = self._file_path(epoch, batch, logs)
        if not self._should_save(epoch, logs, filepath):
            return
        if os.path.isdir(filepath):
            raise IsADirectoryError(f"ModelCheckpoint: the file path {filepath!r} is a folder; "
                                    f"give a file name")
        folder = os.path.dirname(filepath)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath)
        else:
            self.model.save(filepath)


class ReduceLROnPlateau(MonitorCallback):
    """Multiply the learning rate by ``factor`` when the monitored value has not improved for
    ``patience`` epochs (Keras' rules; each epoch's logs also get "learning_rate").

    Args:
        monitor, mode, min_delta: what counts as an improvement (see MonitorCallback).
        factor: new_lr = max(lr · factor, min_lr); must be < 1.
        patience: epochs without improvement before reducing.
        cooldown: epochs to wait after a reduction before counting again.
        min_lr: the floor.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, verbose: int = 0,
                 mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0):
        super().__init__(monitor, mode, min_delta=min_delta)
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1, got {factor}")
        self.factor = factor
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.min_lr = min_lr
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs if logs is not None else {}
        logs["learning_rate"] = float(self.model.optimizer.learning_rate)
        current = self._monitored(logs, "Learning-rate reduction")
        if current is None:
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and self._reduce(epoch):
                self.cooldown_counter = self.cooldown
                self.wait = 0

    def _reduce(self, epoch: int) -> bool:
        optimizer = self.model.optimizer
        old_lr = float(optimizer.learning_rate)
        if old_lr > np.float32(self.min_lr):  # Keras compares in float32
            new_lr = max(old_lr * self.factor, self.min_lr)
            optimizer.learning_rate = new_lr
            if self.verbose > 0:
                logger.info("Epoch %d: ReduceLROnPlateau reducing learning rate to %s.", epoch + 1, new_lr)
            return True
        return False


class CSVLogger(Callback):
    """Write each epoch's logs as a CSV row: an "epoch" column (from 0), then the log keys in
    sorted order (with val_ columns, "NA" where missing, when the first epoch had none).

    Args:
        filename: the CSV file. separator: the delimiter. append: add to an existing file
            (the header is written only if the file was empty).
    """

    def __init__(self, filename, separator: str = ",", append: bool = False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self.keys = None
        self.writer = None
        self.csv_file = None
        self.append_header = True

    def on_train_begin(self, logs=None):
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename, "r", newline="") as f:
                    self.append_header = not bool(len(f.readline()))
            mode = "a"
        else:
            mode = "w"
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, mode, newline="")
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}

        def handle_value(value: Any):
            if isinstance(value, str):
                return value
            if isinstance(value, collections.abc.Iterable) and not (
                    isinstance(value, np.ndarray) and value.ndim == 0):
                return f'"[{", ".join(map(str, value))}]"'
            return value

        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(key.startswith("val_") for key in self.keys):
                self.keys.extend([f"val_{key}" for key in self.keys])
        if self.writer is None:
            dialect = type("MinidlDialect", (csv.excel,), {"delimiter": self.sep})
            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys, dialect=dialect)
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((key, handle_value(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None


class TerminateOnNaN(Callback):
    """Stop training when a batch's loss is NaN or infinite.

    Args:
        raise_error: raise a RuntimeError naming the epoch and batch (counted from 1) and the
            loss, instead of stopping quietly with ``model.stop_training = True`` and a warning.
    Attributes:
        stopped_at: (epoch, batch), counted from 0, where a non-finite loss was seen, or None.
    """

    def __init__(self, raise_error: bool = False):
        super().__init__()
        self.raise_error = raise_error
        self.stopped_at = None
        self._epoch = 0

    def on_train_begin(self, logs=None):
        self.stopped_at = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        self.stopped_at = (self._epoch, batch)
        message = (f"non-finite loss ({float(loss)}) at epoch {self._epoch + 1}, batch {batch + 1}: "
                   f"training stopped (a learning rate too high, unscaled inputs, or log of 0?)")
        if self.raise_error:
            raise RuntimeError(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        self.model.stop_training = True



# --- schedules and hooks ------------------------------------------------------------------------
class LearningRateScheduler(Callback):
    """Set the learning rate at the start of every epoch: ``schedule(epoch, lr) -> new lr``
    (epochs from 0; a ``schedule(epoch)`` of one argument also works), as Keras. Each epoch's
    logs get "learning_rate".

    Args:
        schedule: the function; it must return a float (Python or NumPy), else ValueError.
        verbose: 1 logs each change to the ``minidl`` logger.
    """

    def __init__(self, schedule, verbose: int = 0):
        super().__init__()
        if not callable(schedule):
            raise ValueError(f"LearningRateScheduler: schedule must be a function (epoch, lr) -> lr, "
                             f"got {schedule!r:.80}")
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        try:
            learning_rate = self.schedule(epoch, float(optimizer.learning_rate))
        except TypeError:  # Keras' older form, schedule(epoch)
            learning_rate = self.schedule(epoch)
        if not isinstance(learning_rate, (float, np.float32, np.float64)):
            raise ValueError(f"LearningRateScheduler: the schedule must return a float, got "
                             f"{learning_rate!r:.60} at epoch {epoch}")
        optimizer.learning_rate = float(learning_rate)
        if self.verbose > 0:
            logger.info("Epoch %d: LearningRateScheduler setting learning rate to %s.", epoch + 1, learning_rate)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class LambdaCallback(Callback):
    """A callback from functions, as Keras: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``.

    Each function replaces the hook of its name and gets its arguments: ``(epoch, logs)`` for
    the epoch hooks, ``(batch, logs)`` for batch hooks, ``(logs)`` for on_train_begin/end. Other
    hooks (on_test_end=..., on_batch_end=...) may be given by name too.
    """

    HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_batch_begin",
             "on_batch_end", "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
             "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
             "on_predict_batch_begin", "on_predict_batch_end")

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                     on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        for name, function in hooks.items():
            if name not in self.HOOKS:
                raise TypeError(f"LambdaCallback: unknown hook {name!r}; hooks: {', '.join(self.HOOKS)}")
            if function is not None:
                if not callable(function):
                    raise TypeError(f"LambdaCallback: {name} must be a function, got {function!r:.60}")
                setattr(self, name, function)


class BackupAndRestore(Callback):
    """Resume a fit that was interrupted (killed, crashed) where its last backup left it, as Keras.

    Each epoch's end (or every ``save_freq`` batches) saves the whole training state to
    ``backup_dir/latest.npz``: weights, optimizer slots and step count, ``dl.random``'s state, and
    the epoch to go on from. A later ``fit`` with the same callback finds it before the first
    epoch, puts it back into the model and starts at that epoch, so that the weights end exactly
    where an uninterrupted run ends (Keras' backup holds no random state, so its shuffles and
    dropout masks differ after a restore). When fit ends normally the backup is deleted.

    Args:
        backup_dir: the folder for the backup (created when needed).
        save_freq: "epoch", or back up every this many batches (the restored run then redoes
            the interrupted epoch from its start, as Keras).
        double_checkpoint: keep the previous backup as ``latest.npz.bkp`` and fall back to it when
            the latest cannot be read.
        delete_checkpoint: delete ``backup_dir`` when fit ends normally.
    """

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint: bool = False,
                 delete_checkpoint: bool = True):
        super().__init__()
        if not backup_dir:
            raise ValueError("BackupAndRestore: backup_dir must be a folder path, got an empty one")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq <= 0):
            raise ValueError(f"BackupAndRestore: save_freq must be 'epoch' or a positive int, got {save_freq!r}")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.double_checkpoint = double_checkpoint
        self.delete_checkpoint = delete_checkpoint
        self.path = os.path.join(self.backup_dir, "latest.npz")
        self.previous_path = self.path + ".bkp"
        self._current_epoch = 0
        self._last_batch = -1
        self._batches_since_save = 0

    def on_train_begin(self, logs=None):
        if not getattr(self.model, "built", False) or not self.model.weights:
            raise ValueError("BackupAndRestore: the model must be built before fit (give the first layer "
                             "an input shape, or call it on a batch)")
        for path in (self.path, self.previous_path if self.double_checkpoint else None):
            if path is None or not os.path.exists(path):
                continue
            try:
                metadata = saving.load_training_state(self.model, path)
            except (OSError, ValueError):
                if path == self.previous_path or not self.double_checkpoint:
                    raise
                continue
            epoch = (metadata or {}).get("backup_epoch")
            if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0:
                self.model._initial_epoch = epoch  # Keras' name; fit reads it after on_train_begin
                self._current_epoch = epoch
            return

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch
        self._last_batch = -1

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch = -1
        if self.save_freq == "epoch":
            self._save()

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_since_save += batch - self._last_batch if batch > self._last_batch else batch + 1
        self._last_batch = batch
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._save()

    def _save(self) -> None:
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint and os.path.exists(self.path):
            shutil.copyfile(self.path, self.previous_path)
        self.model.save(self.path, metadata={"backup_epoch": self._current_epoch,
                                             "backup_batch": self._last_batch + 1})

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and os.path.isdir(self.backup_dir):
            shutil.rmtree(self.backup_dir)


CALLBACKS = {cls.__name__: cls for cls in (History, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau,
                                            CSVLogger, TerminateOnNaN, LearningRateScheduler, LambdaCallback,
                                            BackupAndRestore)}
