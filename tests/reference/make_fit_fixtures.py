"""Regenerate tests/reference/fixtures/fit_loop_keras.json: what Keras' fit pulls from its data.

    KERAS_BACKEND=torch python tests/reference/make_fit_fixtures.py

Each case of CASES runs one small ``fit`` with data that counts what is taken from it: a
generator that logs each batch it yields, a Sequence (Keras: PyDataset) that logs each index
asked for, a torch DataLoader over a Dataset that logs each item, and arrays whose first
feature is the sample's number, seen by a pass-through first layer. ``run_case(lib, name)`` runs
a case in "keras" or in "minidl" and returns the same JSON-able record: the batches pulled, the
sample numbers of each training and each validation batch, the steps per epoch, the epochs
that report validation. tests/minidl/test_batches.py compares minidl's record with this file's
(recorded once from Keras 3.15, torch backend), and with Keras live when it is installed.
"""
from __future__ import annotations

import json
import os
import pathlib
import warnings
from types import SimpleNamespace

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
OUT = FIXTURES / "fit_loop_keras.json"
FEATURES = 2


def numbered(ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x (n, 2) whose first column is the sample's number, y = 0.1·number, weight = 1 + number % 3."""
    ids = np.asarray(ids, dtype="float32")
    x = np.stack([ids, np.ones_like(ids)], axis=1)
    return x, (0.1 * ids).reshape(-1, 1), (1.0 + ids % 3).astype("float32")


def counting_generator(pulls: list, first: int, batches: int | None, batch: int = 4, weights=False):
    """Batches of ``batch`` consecutive samples from ``first`` on; each pull logged in ``pulls``;
    ``batches`` of them (None: for ever)."""
    index = 0
    while batches is None or index < batches:
        x, y, w = numbered(range(first + index * batch, first + (index + 1) * batch))
        pulls.append(first + index * batch)
        index += 1
        yield (x, y, w) if weights else (x, y)


def framework(lib: str) -> SimpleNamespace:
    """The few names a case needs, from Keras or from minidl."""
    if lib == "keras":
        import keras
        import torch

        def model(log):
            class Recorder(keras.layers.Layer):  # log by closure: Keras would copy a list attribute
                def call(self, x, training=None):
                    if isinstance(x, torch.Tensor) and x.device.type != "meta":  # not the symbolic build
                        log.append(["train" if training else "test",
                                    [int(round(v)) for v in x.detach().cpu().numpy()[:, 0]]])
                    return x

            keras.utils.set_random_seed(0)
            m = keras.Sequential([keras.Input((FEATURES,)), Recorder(),
                                  keras.layers.Dense(1, kernel_initializer="ones")])
            m.compile(optimizer=keras.optimizers.SGD(0.001), loss="mse")
            return m
        return SimpleNamespace(model=model, Callback=keras.callbacks.Callback, Sequence=keras.utils.PyDataset,
                               LearningRateScheduler=keras.callbacks.LearningRateScheduler,
                               LambdaCallback=keras.callbacks.LambdaCallback,
                               sequence_init=lambda self: keras.utils.PyDataset.__init__(self))
    import minidl as dl
    from minidl.layers.base import Layer

    class _Recorder(Layer):  # the leading _ keeps it out of tests/test_coverage.py's layer walk
        def __init__(self, log):
            super().__init__()
            self.log = log

        def call(self, x, training=False):
            self.log.append(["train" if training else "test", [int(round(v)) for v in x.numpy()[:, 0]]])
            return x

    def model(log):
        dl.random.seed(0)
        m = dl.Sequential([dl.layers.Input((FEATURES,)), _Recorder(log),
                           dl.layers.Dense(1, kernel_initializer="ones")])
        m.compile(optimizer=dl.optimizers.SGD(0.001), loss="mse")
        log.clear()  # the build's trial call
        return m
    return SimpleNamespace(model=model, Callback=dl.callbacks.Callback, Sequence=dl.data.Sequence,
                           LearningRateScheduler=dl.callbacks.LearningRateScheduler,
                           LambdaCallback=dl.callbacks.LambdaCallback,
                           sequence_init=lambda self: None)


def counting_sequence(fw, pulls: list, batches: int, batch: int = 4):
    class Counting(fw.Sequence):
        def __init__(self):
            fw.sequence_init(self)

        def __len__(self):
            return batches

        def __getitem__(self, index):
            pulls.append(index)
            return numbered(range(index * batch, (index + 1) * batch))[:2]

        def on_epoch_end(self):
            pulls.append("end")
    return Counting()


def counting_loader(pulls: list, samples: int, batch: int = 4):
    import torch

    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return samples

        def __getitem__(self, index):
            pulls.append(index)
            x, y, _ = numbered([index])
            return torch.from_numpy(x[0]), torch.from_numpy(y[0])
    return torch.utils.data.DataLoader(Items(), batch_size=batch, shuffle=False)


# case -> (training data, fit arguments, validation data or None); data: ("arrays", n),
# ("generator", batches or None), ("weighted_generator", batches), ("sequence", batches),
# ("loader", samples). Validation data numbers its samples from 100 on.
CASES: dict[str, tuple[tuple, dict, tuple | None]] = {
    "generator_steps": (("generator", None), dict(epochs=3, steps_per_epoch=3), None),
    "finite_generator": (("generator", 9), dict(epochs=2), None),
    "finite_generator_steps": (("generator", 9), dict(epochs=3, steps_per_epoch=3), None),
    "finite_generator_runs_out": (("generator", 7), dict(epochs=5, steps_per_epoch=3), None),
    "weighted_generator": (("weighted_generator", 3), dict(epochs=1), None),
    "sequence": (("sequence", 5), dict(epochs=2, shuffle=False), None),
    "sequence_shuffled": (("sequence", 5), dict(epochs=2), None),  # Keras shuffles the batch order
    "sequence_steps": (("sequence", 5), dict(epochs=3, steps_per_epoch=3, shuffle=False), None),
    "arrays": (("arrays", 10), dict(epochs=2, batch_size=4, shuffle=False), None),
    "arrays_steps": (("arrays", 20), dict(epochs=3, batch_size=4, steps_per_epoch=3, shuffle=False), None),
    "arrays_steps_over": (("arrays", 12), dict(epochs=2, batch_size=4, steps_per_epoch=5, shuffle=False), None),
    "arrays_steps_no_batch_size": (("arrays", 10), dict(epochs=2, steps_per_epoch=3, shuffle=False), None),
    "loader": (("loader", 10), dict(epochs=2), None),
    "loader_steps": (("loader", 20), dict(epochs=3, steps_per_epoch=3), None),
    "val_arrays_batch_size": (("arrays", 8), dict(epochs=2, batch_size=4, shuffle=False,
                                                   validation_batch_size=3), ("arrays", 7)),
    "val_weighted_arrays": (("arrays", 8), dict(epochs=2, batch_size=4, shuffle=False), ("weighted_arrays", 7)),
    "val_generator_steps": (("arrays", 8), dict(epochs=3, batch_size=4, shuffle=False, validation_steps=2),
                            ("generator", None)),
    "val_finite_generator": (("arrays", 8), dict(epochs=3, batch_size=4, shuffle=False), ("generator", 3)),
    "val_generator_more_steps": (("arrays", 8), dict(epochs=3, batch_size=4, shuffle=False, validation_steps=3),
                                 ("generator", None)),
    "val_finite_generator_steps": (("arrays", 8), dict(epochs=3, batch_size=4, shuffle=False,
                                                       validation_steps=2), ("generator", 5)),
    "val_arrays_steps": (("arrays", 8), dict(epochs=2, batch_size=4, shuffle=False, validation_steps=1),
                         ("arrays", 7)),
    "val_freq": (("arrays", 8), dict(epochs=4, batch_size=4, shuffle=False, validation_freq=2), ("arrays", 4)),
    "val_freq_list": (("arrays", 8), dict(epochs=4, batch_size=4, shuffle=False, validation_freq=[1, 4]),
                      ("arrays", 4)),
    "val_sequence_steps": (("arrays", 8), dict(epochs=2, batch_size=4, shuffle=False, validation_steps=2),
                           ("sequence", 5)),
    "val_loader": (("arrays", 8), dict(epochs=2, batch_size=4, shuffle=False), ("loader", 6)),
    # with "schedule": LearningRateScheduler halving the rate from the second epoch on, and a
    # LambdaCallback logging the hooks it is given
    "lr_scheduler": (("arrays", 8), dict(epochs=3, batch_size=4, shuffle=False, schedule=True), ("arrays", 4)),
    "val_split": (("arrays", 10), dict(epochs=1, batch_size=4, shuffle=False, validation_split=0.3), None),
}


def make_data(fw, spec: tuple, pulls: list, first: int = 0):
    kind, size = spec
    if kind == "arrays":
        return numbered(range(first, first + size))[:2]
    if kind == "weighted_arrays":
        return numbered(range(first, first + size))
    if kind in ("generator", "weighted_generator"):
        return counting_generator(pulls, first, size, weights=kind == "weighted_generator")
    if kind == "sequence":
        return counting_sequence(fw, pulls, size)
    if kind == "loader":
        return counting_loader(pulls, size)
    raise ValueError(kind)


def run_case(lib: str, name: str) -> dict:
    """Run case ``name`` in "keras" or "minidl"; the record described in the module docstring."""
    fw = framework(lib)
    data_spec, fit_args, val_spec = CASES[name]
    log, pulls, val_pulls = [], [], []
    steps: list[int] = []
    test_steps: list[int] = []

    class Steps(fw.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            steps.append(0)
            test_steps.append(0)

        def on_train_batch_end(self, batch, logs=None):
            steps[-1] += 1

        def on_test_batch_end(self, batch, logs=None):
            test_steps[-1] += 1

    model = fw.model(log)
    data = make_data(fw, data_spec, pulls)
    args = dict(fit_args)
    callbacks = [Steps()]
    hooks: list = []
    if args.pop("schedule", False):
        callbacks += [fw.LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch else lr),
                      fw.LambdaCallback(on_epoch_begin=lambda epoch, logs: hooks.append(["epoch_begin", epoch]),
                                        on_train_batch_end=lambda batch, logs: hooks.append(["batch_end", batch]),
                                        on_train_end=lambda logs: hooks.append(["train_end"]))]
    if val_spec is not None:
        args["validation_data"] = make_data(fw, val_spec, val_pulls, first=100)
    if isinstance(data, tuple):
        args["x"], args["y"] = data
    else:
        args["x"] = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        history = model.fit(**args, verbose=0, callbacks=callbacks)
    record = {"pulls": pulls, "val_pulls": val_pulls, "steps": steps, "test_steps": test_steps,
              "train_batches": [ids for kind, ids in log if kind == "train"],
              "test_batches": [ids for kind, ids in log if kind == "test"],
              "history_keys": sorted(history.history),
              "epochs_run": len(history.history.get("loss", [])), "hooks": hooks}
    if "learning_rate" in history.history:
        record["learning_rate"] = [float(v) for v in history.history["learning_rate"]]
    if "val_loss" in history.history:
        record["val_loss"] = [float(v) for v in history.history["val_loss"]]
    record["loss"] = [float(v) for v in history.history.get("loss", [])]
    return record


if __name__ == "__main__":
    import keras
    records = {name: run_case("keras", name) for name in CASES}
    FIXTURES.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"keras_version": keras.__version__, "backend": keras.backend.backend(),
                               "cases": records}, indent=1) + "\n")
    print(f"wrote {OUT}")
