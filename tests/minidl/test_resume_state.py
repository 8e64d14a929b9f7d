"""Training resumed from a saved model goes on exactly as if it had never stopped.

The goal of issue 15: 3 epochs, save, load, 3 more epochs equal 6 epochs in one go, with the
same seed, with shuffling and dropout on. Keras gets this only without shuffling or dropout (it
saves the optimizer, not its random state); minidl saves ``dl.random``'s state too. Then the
refusals: a file's compile settings, optimizer state and random state are untrusted input.
"""
import json
import os
import zipfile

import numpy as np
import pytest

import minidl as dl
from minidl import layers, saving
from minidl.layers.base import Layer
from minidl.layers.serialization import LAYERS
from minidl.saving import ModelFileError

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, (x[:, 0] + x[:, 1] > 0).astype("int64") + (x[:, 2] > 1)


def build(optimizer="adam"):
    model = dl.Sequential([layers.Input((6,)), layers.Dense(16, activation="relu"), layers.BatchNormalization(),
                           layers.Dropout(0.3), layers.Dense(3, activation="softmax")])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def one_go(optimizer, epochs=6, **fit):
    dl.random.seed(11)
    model = build(optimizer())
    x, y = data()
    history = model.fit(x, y, epochs=epochs, batch_size=8, verbose=0, **fit)
    return model, history


def resumed(optimizer, path, load=saving.load_model, **fit):
    dl.random.seed(11)
    model = build(optimizer())
    x, y = data()
    first = model.fit(x, y, epochs=3, batch_size=8, verbose=0, **fit)
    model.save(str(path))
    dl.random.seed(999)  # whatever happens between the runs
    again = load(path)
    second = again.fit(x, y, epochs=6, initial_epoch=3, batch_size=8, verbose=0, **fit)
    return again, first, second


def in_one_process(optimizer, **fit):
    """resumed() without the save and load between its two fits. With use_ema, fit ends by putting
    the averages into the weights (as Keras 3 does), so two fits differ from one: this is the run
    a resumed one must then equal."""
    dl.random.seed(11)
    model = build(optimizer())
    x, y = data()
    first = model.fit(x, y, epochs=3, batch_size=8, verbose=0, **fit)
    second = model.fit(x, y, epochs=6, initial_epoch=3, batch_size=8, verbose=0, **fit)
    return model, first.history["loss"] + second.history["loss"]


OPTIMIZERS = {
    "adam": lambda: dl.optimizers.Adam(0.01),
    "adam_amsgrad_decay": lambda: dl.optimizers.Adam(dl.optimizers.ExponentialDecay(0.02, 5, 0.8), amsgrad=True),
    "adamw": lambda: dl.optimizers.AdamW(0.01),
    "sgd_nesterov": lambda: dl.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    "rmsprop_centered": lambda: dl.optimizers.RMSprop(0.005, momentum=0.5, centered=True),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_three_epochs_saved_loaded_and_three_more_equal_six_in_one_go(tmp_path, name):
    whole, whole_history = one_go(OPTIMIZERS[name], validation_split=0.25)
    again, first, second = resumed(OPTIMIZERS[name], tmp_path / "model.npz", validation_split=0.25)
    for a, b in zip(again.get_weights(), whole.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(first.history["loss"] + second.history["loss"], whole_history.history["loss"],
                               rtol=1e-6)
    assert again.optimizer.iterations == whole.optimizer.iterations == 6 * 5  # 36 samples in batches of 8


def test_without_the_saved_state_the_runs_part(tmp_path):
    """What each saved part is for: drop one and the resumed run ends elsewhere."""
    whole, _ = one_go(OPTIMIZERS["adam"])

    def fresh_optimizer(path):
        model = saving.load_model(path, compile=False)
        model.compile(optimizer=dl.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
        return model

    for load in (fresh_optimizer, lambda path: saving.load_model(path, restore_random_state=False)):
        again, _, _ = resumed(OPTIMIZERS["adam"], tmp_path / "model.npz", load=load)
        gap = max(float(np.abs(a - b).max()) for a, b in zip(again.get_weights(), whole.get_weights()))
        assert gap > 1e-3


def test_the_loaded_model_is_compiled_as_it_was_saved(tmp_path):
    model = build(dl.optimizers.RMSprop(0.003, rho=0.8, clipnorm=1.5))
    model.compile(optimizer=model.optimizer, loss=dl.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], terminate_on_nan=False)
    model.fit(*data(), epochs=1, verbose=0)
    model.save(str(tmp_path / "m.npz"))
    again = saving.load_model(tmp_path / "m.npz")
    assert type(again.optimizer) is dl.optimizers.RMSprop
    assert again.optimizer.get_config() == model.optimizer.get_config()
    assert again.loss.name == "sparse_categorical_crossentropy" and again.loss.options == {"from_logits": True}
    assert again.metric_names == ["accuracy"] and again.terminate_on_nan is False
    x, y = data(seed=1)
    assert again.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0), rel=1e-6)
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:  # slots are plain arrays
        document = json.loads(archive["config"].tobytes())
        assert document["optimizer_state"]["iterations"] == model.optimizer.iterations == 2
        assert len([n for n in archive.files if n.startswith("optimizer_")]) == len(document["optimizer_state"]["slots"])


def test_include_optimizer_false_and_compile_false(tmp_path):
    model = build()
    model.fit(*data(), epochs=1, verbose=0)
    model.save(str(tmp_path / "m.npz"))
    assert saving.load_model(tmp_path / "m.npz", compile=False).loss is None
    saving.save_model(model, tmp_path / "plain.npz", include_optimizer=False)
    again = saving.load_model(tmp_path / "plain.npz")
    assert again.loss is not None and again.optimizer.iterations == 0 and again.optimizer.variables() == []


def test_a_file_written_by_the_version_1_save_still_loads_uncompiled():
    # model_v1_main.npz was written by Sequential.save of minidl main at commit 97b5807, the last
    # version-1 writer, after 2 epochs of Adam: Dense, BatchNormalization, Dropout, Dense. Its
    # compile settings and optimizer were not saved then. Never regenerate it.
    path = os.path.join(FIXTURES, "model_v1_main.npz")
    model = saving.load_model(path)
    assert model.loss is None and [type(layer).__name__ for layer in model.layers] == [  # no InputLayer, as Keras
        "Dense", "BatchNormalization", "Dropout", "Dense"]
    assert saving.read_metadata(path) == {"written_by": "minidl main at 97b5807", "labels": ["a", "b", "c"]}
    with np.load(os.path.join(FIXTURES, "model_v1_main_expected.npz")) as expected:
        np.testing.assert_allclose(model.predict(expected["x"]), expected["y"], rtol=1e-6, atol=1e-7)


# --- custom_objects ------------------------------------------------------------------------------
def doubled_error(y_true, y_pred):
    return 2.0 * dl.functional.mean_squared_error(y_true, y_pred)


def mean_prediction(y_true, y_pred):
    return float(np.mean(y_pred))


class _Doubler(Layer):  # the leading _ keeps it out of tests/test_coverage.py's layer walk
    def call(self, x):
        return x * 2.0


def test_custom_objects_bring_back_a_custom_loss_metric_and_layer(tmp_path, monkeypatch):
    model = dl.Sequential([layers.Input((6,)), _Doubler(), layers.Dense(1)])
    model.compile(optimizer="sgd", loss=doubled_error, metrics=[mean_prediction])
    x, y = data()
    model.fit(x, y.astype("float32")[:, None], epochs=1, verbose=0)
    model.save(str(tmp_path / "m.npz"))
    with pytest.raises(ModelFileError, match="doubled_error.*custom_objects"):
        saving.load_model(tmp_path / "m.npz")
    monkeypatch.delitem(LAYERS, "_Doubler")  # as in a new process that has not defined it
    with pytest.raises(ModelFileError, match="_Doubler"):
        saving.load_model(tmp_path / "m.npz", custom_objects={"doubled_error": doubled_error})
    again = saving.load_model(tmp_path / "m.npz", custom_objects={
        "doubled_error": doubled_error, "mean_prediction": mean_prediction, "_Doubler": _Doubler})
    assert "_Doubler" not in LAYERS  # known only while that file was read
    assert again.loss.fn is doubled_error and again.metric_names == ["mean_prediction"]
    assert again.compiled.metric_entries == [[mean_prediction]]
    assert again.evaluate(x, y[:, None], verbose=0) == pytest.approx(model.evaluate(x, y[:, None], verbose=0))


def test_custom_objects_cannot_replace_a_minidl_layer(tmp_path):
    build().save(str(tmp_path / "m.npz"))
    with pytest.raises(ModelFileError, match="minidl's own Dense"):
        saving.load_model(tmp_path / "m.npz", custom_objects={"Dense": _Doubler})


# --- untrusted state -----------------------------------------------------------------------------
def rewrite(path, out, change_document=None, drop=(), add=None):
    """A copy of model file ``path`` with its JSON document changed and members dropped or added."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files if name not in drop}
    document = json.loads(arrays["config"].tobytes())
    if change_document:
        change_document(document)
    arrays["config"] = np.frombuffer(json.dumps(document).encode(), dtype=np.uint8)
    arrays.update(add or {})
    np.savez(out, **arrays)
    return out


def saved(tmp_path):
    model = build()
    model.fit(*data(), epochs=1, verbose=0)
    model.save(str(tmp_path / "m.npz"))
    return tmp_path / "m.npz"


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def change(document):
        target = document
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return change


@pytest.mark.parametrize("change, message", [
    (_set("compile", "optimizer", "class_name", "os.system"), "optimizer 'os.system' is not minidl's"),
    (_set("compile", "optimizer", "config", {"learning_rate": -1}), "learning_rate"),
    (_set("compile", "optimizer", "config", {"evil": 1}), "compile settings"),
    (_set("compile", "loss", "options", {"eval": "1"}), "not options of"),
    (_set("compile", "loss", "name", "rm_rf"), "loss 'rm_rf' is not minidl's"),
    (_set("compile", "metrics", [3]), "metrics entries"),
    (_set("compile", "metrics", ["no_such_metric"]), "no_such_metric"),
    (_set("compile", "terminate_on_nan", "yes"), "terminate_on_nan"),
    (_set("optimizer_state", "iterations", -4), "iterations"),
    (_set("optimizer_state", "iterations", 2 ** 60), "iterations"),
    (_set("optimizer_state", "slots", [[0, "momentum"]]), "lists 1 slots"),
    (_set("random_state", "state", "12ab"), "decimal string"),
    (_set("random_state", "bit_generator", "MT19937"), "PCG64"),
])
def test_a_bad_compile_optimizer_or_random_state_is_refused_by_name(tmp_path, change, message):
    path = rewrite(saved(tmp_path), tmp_path / "bad.npz", change)
    with pytest.raises(ModelFileError, match=message):
        saving.load_model(path)


def test_slots_of_the_wrong_shape_or_with_a_gap_are_refused_before_any_data_is_read(tmp_path):
    path = saved(tmp_path)
    swapped = rewrite(path, tmp_path / "swapped.npz",
                      _set("optimizer_state", "slots", [[1, "m"]] + json.loads(
                          np.load(path)["config"].tobytes())["optimizer_state"]["slots"][1:]))
    with pytest.raises(ModelFileError, match="optimizer_0000 has shape .* but weight 1"):
        saving.load_model(swapped)
    gap = rewrite(path, tmp_path / "gap.npz", drop=("optimizer_0001",))
    with pytest.raises(ModelFileError, match="optimizer_0000 ... in sequence"):
        saving.load_model(gap)
    nan = np.load(path)["optimizer_0000"] * np.nan
    with pytest.raises(ModelFileError, match="optimizer_0000 .*NaN"):
        saving.load_model(rewrite(path, tmp_path / "nan.npz", add={"optimizer_0000": nan}))


def test_an_unexpected_member_is_still_refused(tmp_path):
    path = rewrite(saved(tmp_path), tmp_path / "extra.npz", add={"script": np.zeros(3)})
    with pytest.raises(ModelFileError, match="unexpected entry 'script.npy'"):
        saving.load_model(path)
    with zipfile.ZipFile(path) as archive:  # the test wrote what it meant to
        assert "script.npy" in archive.namelist()


def test_compile_settings_that_are_not_json_able_are_left_out_with_a_warning(tmp_path):
    model = build()
    model.compile(optimizer="adam", loss=dl.losses.Loss(dl.functional.mean_squared_error, "mean_squared_error",
                                                        scale=np.ones(2)))
    with pytest.warns(UserWarning, match="compile settings are left out"):
        model.save(str(tmp_path / "m.npz"))
    assert saving.load_model(tmp_path / "m.npz").loss is None


# --- the optimizer options that keep state beyond the slots of their rule -------------------------
# 36 training samples in batches of 8: 5 calls an epoch, so 3 epochs end 15 calls in, with 1 of 2
# (or 3 of 4) gradients accumulated and not yet applied, and Nadam's Π_t a running product.
OPTION_OPTIMIZERS = {
    "adam_ema": lambda: dl.optimizers.Adam(0.01, use_ema=True, ema_momentum=0.9),
    "sgd_ema_overwrite": lambda: dl.optimizers.SGD(0.05, momentum=0.9, use_ema=True, ema_momentum=0.8,
                                                   ema_overwrite_frequency=4),
    "adam_accumulate_2": lambda: dl.optimizers.Adam(0.01, gradient_accumulation_steps=2),
    "nadam": lambda: dl.optimizers.Nadam(0.01),
    "nadam_accumulate_4_ema": lambda: dl.optimizers.Nadam(dl.optimizers.ExponentialDecay(0.02, 7, 0.8),
                                                          gradient_accumulation_steps=4, use_ema=True),
}


@pytest.mark.parametrize("name", sorted(OPTION_OPTIMIZERS))
def test_ema_accumulation_and_nadam_resume_bit_for_bit_in_float64(tmp_path, name):
    dl.set_floatx("float64")
    if OPTION_OPTIMIZERS[name]().use_ema:   # each fit ends on the averages: two fits, not one
        whole, whole_loss = in_one_process(OPTION_OPTIMIZERS[name], validation_split=0.25)
    else:
        whole, whole_history = one_go(OPTION_OPTIMIZERS[name], validation_split=0.25)
        whole_loss = whole_history.history["loss"]
    again, first, second = resumed(OPTION_OPTIMIZERS[name], tmp_path / "model.npz", validation_split=0.25)
    assert again.get_weights()[0].dtype == np.float64
    for a, b in zip(again.get_weights(), whole.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(first.history["loss"] + second.history["loss"], whole_loss, rtol=1e-12)
    assert (again.optimizer.calls, again.optimizer.iterations) == (whole.optimizer.calls, whole.optimizer.iterations)
    # what use_ema keeps: the averages, which finalize_variable_values puts into the weights
    for model in (again, whole):
        model.optimizer.finalize_variable_values(model.weights)
    for a, b in zip(again.get_weights(), whole.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_the_file_holds_the_calls_and_nadam_gets_its_product_back(tmp_path):
    """What the test above needs, so that it fails for the right reason if a piece goes."""
    dl.set_floatx("float64")
    model = build(dl.optimizers.Nadam(0.01, gradient_accumulation_steps=4))
    model.fit(*data(), epochs=3, batch_size=8, verbose=0)  # 6 batches an epoch: 18 calls, 4 updates
    model.save(str(tmp_path / "m.npz"))
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        state = json.loads(archive["config"].tobytes())["optimizer_state"]
    assert (state["iterations"], state["calls"]) == (4, 18)
    assert sorted({name for _, name in state["slots"]}) == ["accumulated_gradient", "momentum", "velocity"]
    again = saving.load_model(tmp_path / "m.npz")
    assert again.optimizer.calls == 18 and again.optimizer.iterations == 4
    # Π_4 = μ_1·μ_2·μ_3·μ_4 with μ_t = 0.9·(1 - ½·0.96ᵗ), each about 0.45
    expected = 1.0
    for t in range(1, 5):
        expected *= 0.9 * (1 - 0.5 * 0.96 ** t)
    assert again.optimizer.u_product == model.optimizer.u_product == expected


@pytest.mark.parametrize("change, message", [
    (_set("optimizer_state", "calls", 7), r"calls 7 with gradient_accumulation_steps 1 make 7 updates, "
                                          r"but iterations is 2"),
    (_set("optimizer_state", "calls", 1), r"calls must be an int in \[iterations, 2\*\*53\), got 1"),
    (_set("optimizer_state", "calls", "2"), "calls must be an int"),
])
def test_a_bad_call_count_is_refused_by_name(tmp_path, change, message):
    path = rewrite(saved(tmp_path), tmp_path / "bad.npz", change)
    with pytest.raises(ModelFileError, match=message):
        saving.load_model(path)


def test_a_file_without_calls_resumes_as_before(tmp_path):
    """Files written before "calls" existed: calls = iterations (no accumulation)."""
    def drop(document):
        del document["optimizer_state"]["calls"]
    again = saving.load_model(rewrite(saved(tmp_path), tmp_path / "old.npz", drop))
    assert again.optimizer.iterations == again.optimizer.calls == 2
