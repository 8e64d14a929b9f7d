"""Callbacks against Keras' rules, driven by a tiny fake model, and (LearningRateScheduler,
LambdaCallback, BackupAndRestore) by real fits."""
import csv
import math

import numpy as np
import pytest

import minidl as dl
from minidl import callbacks, layers


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


# --- LearningRateScheduler, LambdaCallback, BackupAndRestore -------------------------------------
# (their values against Keras: the "lr_scheduler" case of tests/minidl/test_batches.py)
def _linear_model(optimizer=None):
    dl.random.seed(2)
    model = dl.Sequential([layers.Input((3,)), layers.Dense(4, activation="relu"), layers.Dropout(0.2),
                           layers.Dense(1)])
    model.compile(optimizer=optimizer or dl.optimizers.Adam(0.01), loss="mse")
    return model


def _regression(n=24):
    x = np.random.default_rng(0).normal(size=(n, 3)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


def test_learning_rate_scheduler_takes_one_or_two_arguments_and_logs_the_rate():
    x, y = _regression()
    model = _linear_model(dl.optimizers.SGD(0.1))
    history = model.fit(x, y, epochs=3, verbose=0,
                        callbacks=[dl.callbacks.LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1))])
    assert history.history["learning_rate"] == pytest.approx([0.1, 0.05, 0.1 / 3])


@pytest.mark.parametrize("result", [1, "0.1", None, np.array([0.1])])
def test_learning_rate_scheduler_refuses_a_schedule_that_does_not_return_a_float(result):
    x, y = _regression()
    with pytest.raises(ValueError, match="must return a float"):
        _linear_model().fit(x, y, verbose=0, callbacks=[dl.callbacks.LearningRateScheduler(lambda e, lr: result)])


def test_lambda_callback_hooks_by_name_and_refuses_unknown_ones():
    seen = []
    callback = dl.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(("epoch", epoch)),
                                           on_test_end=lambda logs: seen.append(("test", round(logs["loss"], 9))))
    x, y = _regression()
    history = _linear_model().fit(x, y, epochs=2, verbose=0, validation_data=(x, y), callbacks=[callback])
    assert seen == [("test", round(history.history["val_loss"][0], 9)), ("epoch", 0),
                    ("test", round(history.history["val_loss"][1], 9)), ("epoch", 1)]
    with pytest.raises(TypeError, match="unknown hook 'on_epoch_ending'"):
        dl.callbacks.LambdaCallback(on_epoch_ending=print)
    with pytest.raises(TypeError, match="on_epoch_end must be a function"):
        dl.callbacks.LambdaCallback(on_epoch_end=3)


class _Interrupt(dl.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise KeyboardInterrupt(f"killed at epoch {epoch}")


def test_backup_and_restore_resumes_an_interrupted_fit_exactly(tmp_path):
    x, y = _regression()
    whole = _linear_model()
    whole.fit(x, y, epochs=5, batch_size=8, verbose=0)
    backup = dl.callbacks.BackupAndRestore(tmp_path / "backup")
    interrupted = _linear_model()
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(x, y, epochs=5, batch_size=8, verbose=0, callbacks=[backup, _Interrupt(3)])
    assert (tmp_path / "backup" / "latest.npz").exists()
    dl.random.seed(123)  # a new process, or anything between
    restarted = _linear_model()
    epochs = []
    history = restarted.fit(x, y, epochs=5, batch_size=8, verbose=0, callbacks=[
        backup, dl.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: epochs.append(epoch))])
    assert epochs == [3, 4] and history.epoch == [3, 4]
    for a, b in zip(restarted.get_weights(), whole.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert not (tmp_path / "backup").exists()  # a finished fit deletes its backup
    assert restarted.fit(x, y, epochs=1, verbose=0).epoch == [0]  # and the next fit starts afresh


def test_backup_every_few_batches_redoes_the_interrupted_epoch(tmp_path):
    x, y = _regression()  # 3 batches of 8 an epoch; saves after batches 2, 4, 6, 8 of the run
    backup = dl.callbacks.BackupAndRestore(tmp_path, save_freq=2)
    with pytest.raises(KeyboardInterrupt):
        _linear_model().fit(x, y, epochs=5, batch_size=8, verbose=0, callbacks=[backup, _Interrupt(3)])
    epochs = []
    _linear_model().fit(x, y, epochs=5, batch_size=8, verbose=0, callbacks=[
        backup, dl.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: epochs.append(epoch))])
    assert epochs == [2, 3, 4]  # the last save was inside epoch 2 (0-based), as in Keras


def test_backup_and_restore_falls_back_to_the_previous_backup(tmp_path):
    x, y = _regression()
    backup = dl.callbacks.BackupAndRestore(tmp_path, double_checkpoint=True, delete_checkpoint=False)
    model = _linear_model()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=4, verbose=0, callbacks=[backup, _Interrupt(2)])
    (tmp_path / "latest.npz").write_bytes(b"damaged")
    epochs = []
    _linear_model().fit(x, y, epochs=4, verbose=0, callbacks=[
        backup, dl.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: epochs.append(epoch))])
    assert epochs == [1, 2, 3]  # the .bkp holds the state after epoch 1 (0-based 0)


def test_backup_and_restore_arguments():
    with pytest.raises(ValueError, match="backup_dir"):
        dl.callbacks.BackupAndRestore("")
    with pytest.raises(ValueError, match="save_freq"):
        dl.callbacks.BackupAndRestore("b", save_freq=0)
    unbuilt = dl.Sequential([layers.Dense(1)])
    unbuilt.compile(loss="mse")
    with pytest.raises(ValueError, match="must be built"):
        unbuilt.fit(*_regression(), verbose=0, callbacks=[dl.callbacks.BackupAndRestore("b")])
