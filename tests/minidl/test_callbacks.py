"""Callbacks against Keras' rules, driven by a tiny fake model (no Sequential needed)."""
import csv
import math

import numpy as np
import pytest

from minidl import callbacks


class FakeOptimizer:
    def __init__(self, learning_rate=0.1):
        self.learning_rate = learning_rate


class FakeModel:
    """What callbacks need from a model: stop_training, optimizer, weights, save."""

    def __init__(self):
        self.stop_training = False
        self.optimizer = FakeOptimizer()
        self.weights = [np.zeros(2)]
        self.saved = []

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [w.copy() for w in weights]

    def save(self, path):
        self.saved.append(("model", path))
        open(path, "w").close()

    def save_weights(self, path):
        self.saved.append(("weights", path))
        open(path, "w").close()


def run_epochs(callback, values, monitor="val_loss", model=None, extra=None):
    """Drive ``callback`` through epochs whose monitored value is ``values[epoch]``; the model's
    weights at epoch e are [e, e]. Returns (model, epochs run, logs of each epoch)."""
    model = model or FakeModel()
    cbs = callbacks.CallbackList([callback], add_history=True, model=model)
    cbs.on_train_begin()
    seen = []
    for epoch, value in enumerate(values):
        cbs.on_epoch_begin(epoch)
        model.weights = [np.full(2, float(epoch))]
        logs = {"loss": 1.0, monitor: value, **(extra or {})}
        cbs.on_epoch_end(epoch, logs)
        seen.append(logs)
        if model.stop_training:
            break
    cbs.on_train_end()
    return model, len(seen), cbs.history


def keras_run(keras_callback, values, monitor="val_loss"):
    model = FakeModel()
    keras_callback.set_model(model)
    keras_callback.on_train_begin()
    for epoch, value in enumerate(values):
        keras_callback.on_epoch_begin(epoch)
        model.weights = [np.full(2, float(epoch))]
        keras_callback.on_epoch_end(epoch, {"loss": 1.0, monitor: value})
        if model.stop_training:
            break
    keras_callback.on_train_end()
    return model, epoch + 1


LOSSES = [1.0, 0.8, 0.81, 0.79, 0.85, 0.9, 0.7, 0.95, 0.96, 0.97]


@pytest.mark.parametrize("kwargs", [
    {"patience": 0}, {"patience": 2}, {"patience": 2, "min_delta": 0.05},
    {"patience": 1, "restore_best_weights": True}, {"patience": 3, "restore_best_weights": True},
    {"patience": 2, "baseline": 0.75}, {"patience": 1, "start_from_epoch": 3},
])
def test_early_stopping_matches_keras(kwargs):
    keras = pytest.importorskip("keras")
    ours, epochs, _ = run_epochs(callbacks.EarlyStopping(mode="min", **kwargs), LOSSES)
    theirs, keras_epochs = keras_run(keras.callbacks.EarlyStopping(mode="min", **kwargs), LOSSES)
    assert epochs == keras_epochs
    np.testing.assert_array_equal(ours.weights[0], theirs.weights[0])


def test_early_stopping_by_hand():
    stopper = callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    model, epochs, history = run_epochs(stopper, LOSSES)
    assert epochs == 6 and stopper.stopped_epoch == 5 and model.stop_training
    assert stopper.best == 0.79 and stopper.best_epoch == 3
    np.testing.assert_array_equal(model.weights[0], [3.0, 3.0])   # restored from epoch 3
    assert history.history["val_loss"] == LOSSES[:6] and history.epoch == list(range(6))
    assert model.history is history


def test_early_stopping_auto_mode_maximises_accuracy():
    stopper = callbacks.EarlyStopping(monitor="val_accuracy", patience=1)
    _, epochs, _ = run_epochs(stopper, [0.5, 0.6, 0.55, 0.58, 0.9], monitor="val_accuracy")
    assert epochs == 3 and stopper.best == 0.6


def test_monitor_errors_and_warnings():
    with pytest.raises(ValueError, match="pass mode='min' or mode='max'"):
        run_epochs(callbacks.EarlyStopping(monitor="val_widgets"), [1.0], monitor="val_widgets")
    stopper = callbacks.EarlyStopping()
    stopper.set_model(FakeModel())
    stopper.on_train_begin()
    with pytest.warns(UserWarning, match=r"'val_loss', which is not in the logs; available: loss"):
        stopper.on_epoch_end(0, {"loss": 1.0})


@pytest.mark.parametrize("kwargs", [
    {"patience": 1}, {"patience": 2, "factor": 0.5}, {"patience": 1, "cooldown": 2},
    {"patience": 1, "min_lr": 0.02, "factor": 0.5}, {"patience": 1, "min_delta": 0.05},
])
def test_reduce_lr_on_plateau_matches_keras(kwargs):
    keras = pytest.importorskip("keras")
    ours, _, history = run_epochs(callbacks.ReduceLROnPlateau(mode="min", **kwargs), LOSSES)
    theirs, _ = keras_run(keras.callbacks.ReduceLROnPlateau(mode="min", **kwargs), LOSSES)
    assert ours.optimizer.learning_rate == pytest.approx(theirs.optimizer.learning_rate)
    assert len(history.history["learning_rate"]) == len(LOSSES)   # logged for History


def test_reduce_lr_on_plateau_by_hand():
    reducer = callbacks.ReduceLROnPlateau(patience=2, factor=0.5, min_lr=0.03)
    model, _, history = run_epochs(reducer, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    # reductions after epochs 2 and 4: 0.1 -> 0.05 -> 0.03 (floored)
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.03])
    assert model.optimizer.learning_rate == pytest.approx(0.03)
    with pytest.raises(ValueError, match="factor must be < 1"):
        callbacks.ReduceLROnPlateau(factor=1.5)


def test_model_checkpoint_formats_names_and_saves_best_only(tmp_path):
    path = str(tmp_path / "ckpt" / "model-{epoch:02d}-{val_loss:.2f}.npz")
    checkpoint = callbacks.ModelCheckpoint(path, save_best_only=True)
    model, _, _ = run_epochs(checkpoint, [0.5, 0.6, 0.4])
    assert [p for _, p in model.saved] == [str(tmp_path / "ckpt" / "model-01-0.50.npz"),
                                           str(tmp_path / "ckpt" / "model-03-0.40.npz")]
    every = callbacks.ModelCheckpoint(str(tmp_path / "w-{epoch}.npz"), save_weights_only=True)
    model, _, _ = run_epochs(every, [0.5, 0.6])
    assert model.saved == [("weights", str(tmp_path / "w-1.npz")), ("weights", str(tmp_path / "w-2.npz"))]
    bad = callbacks.ModelCheckpoint(str(tmp_path / "{val_acc}.npz"))
    with pytest.raises(KeyError, match="cannot format the file path"):
        run_epochs(bad, [0.5])


def test_model_checkpoint_every_n_batches(tmp_path):
    checkpoint = callbacks.ModelCheckpoint(str(tmp_path / "m-{epoch}-{batch}.npz"), save_freq=3)
    model = FakeModel()
    checkpoint.set_model(model)
    checkpoint.on_train_begin()
    for epoch in range(2):
        checkpoint.on_epoch_begin(epoch)
        for batch in range(4):
            checkpoint.on_train_batch_end(batch, {"loss": 1.0})
        checkpoint.on_epoch_end(epoch, {"loss": 1.0})
    assert [p.rsplit("/", 1)[1] for _, p in model.saved] == ["m-1-3.npz", "m-2-2.npz"]


def test_csv_logger_writes_keras_layout(tmp_path):
    path = tmp_path / "log.csv"
    logger = callbacks.CSVLogger(str(path))
    run_epochs(logger, [0.5, 0.4], extra={"accuracy": 0.9})
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["epoch", "accuracy", "loss", "val_loss"]
    assert rows[1] == ["0", "0.9", "1.0", "0.5"] and rows[2][0] == "1"
    appender = callbacks.CSVLogger(str(path), append=True)
    run_epochs(appender, [0.3], extra={"accuracy": 0.9})
    rows = list(csv.reader(open(path)))
    assert len(rows) == 4 and rows[3][3] == "0.3"   # no second header
    no_val = tmp_path / "train.csv"
    logger = callbacks.CSVLogger(str(no_val), separator=";")
    run_epochs(logger, [0.5], monitor="accuracy")
    assert open(no_val).read().splitlines() == ["epoch;accuracy;loss;val_accuracy;val_loss", "0;0.5;1.0;NA;NA"]


def test_terminate_on_nan_stops_or_raises_naming_epoch_and_batch():
    model = FakeModel()
    guard = callbacks.TerminateOnNaN()
    cbs = callbacks.CallbackList([guard], model=model)
    cbs.on_train_begin()
    cbs.on_epoch_begin(1)
    cbs.on_train_batch_end(0, {"loss": np.float32(0.5)})
    assert not model.stop_training
    with pytest.warns(RuntimeWarning, match=r"epoch 2, batch 4"):
        cbs.on_train_batch_end(3, {"loss": np.float32(np.nan)})
    assert model.stop_training and guard.stopped_at == (1, 3)
    strict = callbacks.TerminateOnNaN(raise_error=True)
    strict.set_model(FakeModel())
    strict.on_epoch_begin(0)
    with pytest.raises(RuntimeError, match=r"non-finite loss \(inf\) at epoch 1, batch 7"):
        strict.on_train_batch_end(6, {"loss": math.inf})


def test_callback_list_fans_out_every_hook_and_pythonifies_logs():
    calls = []

    class Recorder(callbacks.Callback):
        def on_train_begin(self, logs=None): calls.append(("train_begin", logs))
        def on_epoch_end(self, epoch, logs=None): calls.append(("epoch_end", epoch, logs))
        def on_batch_end(self, batch, logs=None): calls.append(("batch_end", batch, logs))
        def on_test_end(self, logs=None): calls.append(("test_end", logs))

    model = FakeModel()
    cbs = callbacks.CallbackList([Recorder(), Recorder()], add_history=True, model=model, epochs=3)
    assert len(cbs) == 3 and isinstance(cbs.callbacks[-1], callbacks.History)
    assert all(c.model is model and c.params == {"epochs": 3} for c in cbs)
    cbs.on_train_begin()
    cbs.on_train_batch_end(0, {"loss": np.float32(2.0)})   # routed to on_batch_end by default
    cbs.on_test_end({"loss": np.array(1.5)})
    cbs.on_epoch_end(0, {"loss": np.float64(1.0)})
    assert calls[0] == ("train_begin", {}) and len(calls) == 8
    value = calls[2][2]["loss"]
    assert type(value) is float and value == 2.0
    assert type(calls[4][1]["loss"]) is float
    assert cbs.history.history == {"loss": [1.0]}
    with pytest.raises(TypeError, match="Callback instances"):
        callbacks.CallbackList([object()])
