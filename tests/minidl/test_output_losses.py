"""Losses and metrics of several outputs (minidl/output_losses.py): Keras 3's log names and values
from the same weights, loss_weights in the gradient step, and compile's refusals."""
import numpy as np
import pytest

import minidl as dl


def two_outputs(lib):
    x = lib.Input((4,), name="x")
    hidden = lib.layers.Dense(6, activation="relu", name="hidden")(x)
    classes = lib.layers.Dense(3, activation="softmax", name="classes")(hidden)
    value = lib.layers.Dense(1, name="dense_1")(hidden)
    return lib.Model(x, [classes, value])


def data(n=24, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, rng.integers(0, 3, size=n), rng.normal(size=(n, 1)).astype("float32")


COMPILES = [
    dict(loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.5],
         metrics=[["accuracy"], ["mae"]]),
    dict(loss={"classes": "sparse_categorical_crossentropy", "dense_1": "mse"},
         loss_weights={"classes": 0.3, "dense_1": 2.0}, metrics={"classes": "accuracy", "dense_1": ["mse"]}),
    dict(loss=["sparse_categorical_crossentropy", "mse"], loss_weights={"classes": 0.0, "dense_1": 1.5},
         metrics={"classes": ["accuracy"]}),                     # metrics for one output only
]


@pytest.mark.parametrize("settings", COMPILES)
def test_evaluate_gives_keras_names_and_values_from_the_same_weights(settings):
    keras = pytest.importorskip("keras")
    ours, theirs = two_outputs(dl), two_outputs(keras)
    ours.set_weights(theirs.get_weights())
    ours.compile(optimizer="sgd", **settings)
    theirs.compile(optimizer="sgd", **settings)
    x, labels, target = data()
    mine = ours.evaluate(x, [labels, target], batch_size=8, verbose=0, return_dict=True)
    keras_logs = theirs.evaluate(x, [labels, target], batch_size=8, verbose=0, return_dict=True)
    assert set(mine) == set(keras_logs)
    for key in keras_logs:
        assert mine[key] == pytest.approx(keras_logs[key], rel=1e-5, abs=1e-6), key


def test_a_step_with_loss_weights_moves_the_weights_as_keras_does():
    keras = pytest.importorskip("keras")
    ours, theirs = two_outputs(dl), two_outputs(keras)
    ours.set_weights(theirs.get_weights())
    settings = dict(loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[0.25, 3.0])
    ours.compile(optimizer=dl.optimizers.SGD(0.1), **settings)
    theirs.compile(optimizer=keras.optimizers.SGD(0.1), **settings)
    x, labels, target = data()
    mine = ours.train_on_batch(x, [labels, target], return_dict=True)
    keras_logs = theirs.train_on_batch(x, [labels, target], return_dict=True)
    assert mine["loss"] == pytest.approx(float(keras_logs["loss"]), rel=1e-5)
    for left, right in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(left, right, rtol=1e-5, atol=1e-6)


def test_one_loss_for_two_outputs_applies_to_each():
    model = two_outputs(dl)
    model.compile(optimizer="sgd", loss="mse")
    x, _, target = data()
    logs = model.evaluate(x, [np.zeros((len(x), 3), "float32"), target], verbose=0, return_dict=True)
    assert list(logs) == ["loss", "classes_loss", "dense_1_loss"]
    assert logs["loss"] == pytest.approx(logs["classes_loss"] + logs["dense_1_loss"], rel=1e-6)


def test_fit_history_names_each_output():
    model = two_outputs(dl)
    model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"], metrics={"classes": "accuracy"})
    x, labels, target = data(40)
    history = model.fit(x, {"classes": labels, "dense_1": target}, epochs=2, verbose=0,
                        validation_data=(x, [labels, target]))
    assert list(history.history) == ["loss", "classes_loss", "dense_1_loss", "classes_accuracy", "val_loss",
                                     "val_classes_loss", "val_dense_1_loss", "val_classes_accuracy"]


@pytest.mark.parametrize("settings, message", [
    (dict(loss=["mse"]), "a list of 1, but the model has 2 outputs"),
    (dict(loss={"nope": "mse"}), "'nope', which are not outputs"),
    (dict(loss={"classes": "mse"}), r"a loss dict needs every output, \['classes', 'dense_1'\]"),
    (dict(loss="mse", metrics=["mae"]), "metrics must be a dict by output name or a list of lists"),
    (dict(loss="mse", loss_weights="heavy"), "loss_weights must be numbers"),
])
def test_compile_refuses_what_does_not_fit_the_outputs(settings, message):
    with pytest.raises(ValueError, match=message):
        two_outputs(dl).compile(optimizer="sgd", **settings)


def test_class_weight_with_several_outputs_is_refused_as_keras_does():
    model = two_outputs(dl)
    model.compile(optimizer="sgd", loss="mse")
    x, labels, target = data()
    with pytest.raises(ValueError, match="class_weight is not supported for a model of several outputs"):
        model.fit(x, [np.zeros((len(x), 3), "float32"), target], class_weight={0: 1.0}, verbose=0)


# --- sample_weight of several outputs --------------------------------------------------------------
def per_output_weights(n=24, seed=2):
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 2.0, size=n).astype("float32"), rng.uniform(0.1, 2.0, size=n).astype("float32")


def compiled_pair(keras, optimizer=lambda lib: lib.optimizers.SGD(0.1)):
    ours, theirs = two_outputs(dl), two_outputs(keras)
    ours.set_weights(theirs.get_weights())
    for model, lib in ((ours, dl), (theirs, keras)):
        model.compile(optimizer=optimizer(lib), loss=["sparse_categorical_crossentropy", "mse"],
                      loss_weights=[1.0, 0.5])
    return ours, theirs


def assert_logs_close(mine: dict, expected: dict):
    assert set(mine) == set(expected)
    for key in expected:
        assert mine[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-6), key


def test_evaluate_with_one_weight_array_per_output_equals_keras():
    keras = pytest.importorskip("keras")
    ours, theirs = compiled_pair(keras)
    x, labels, target = data()
    w_classes, w_value = per_output_weights()
    expected = theirs.evaluate(x, [labels, target], sample_weight=[w_classes, w_value], batch_size=8,
                               verbose=0, return_dict=True)
    as_list = ours.evaluate(x, [labels, target], sample_weight=[w_classes, w_value], batch_size=8,
                            verbose=0, return_dict=True)
    by_name = ours.evaluate(x, [labels, target], sample_weight={"dense_1": w_value, "classes": w_classes},
                            batch_size=8, verbose=0, return_dict=True)
    assert_logs_close(as_list, expected)
    assert_logs_close(by_name, expected)   # Keras itself fails on a dict here (KeyError 0)
    shared = ours.evaluate(x, [labels, target], sample_weight=w_classes, batch_size=8, verbose=0,
                           return_dict=True)
    assert_logs_close(shared, theirs.evaluate(x, [labels, target], sample_weight=w_classes, batch_size=8,
                                              verbose=0, return_dict=True))
    assert abs(shared["dense_1_loss"] - as_list["dense_1_loss"]) > 1e-4  # the weights do reach each output


def test_fit_with_weights_per_output_trains_as_keras():
    keras = pytest.importorskip("keras")
    ours, theirs = compiled_pair(keras)
    x, labels, target = data()
    weights = list(per_output_weights())
    val = (x[:8], [labels[:8], target[:8]], [weights[0][:8], weights[1][:8]])
    kwargs = dict(batch_size=6, epochs=2, shuffle=False, verbose=0, validation_data=val)
    expected = theirs.fit(x, [labels, target], sample_weight=weights, **kwargs).history
    mine = ours.fit(x, [labels, target], sample_weight=weights, **kwargs).history
    assert set(mine) == set(expected)
    for key in expected:
        np.testing.assert_allclose(mine[key], expected[key], rtol=1e-5, atol=1e-6, err_msg=key)
    for left, right in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(left, right, rtol=1e-5, atol=1e-6)


def test_train_on_batch_and_a_generator_take_weights_per_output_as_keras():
    keras = pytest.importorskip("keras")
    ours, theirs = compiled_pair(keras)
    x, labels, target = data()
    weights = list(per_output_weights())
    mine = ours.train_on_batch(x, [labels, target], sample_weight=weights, return_dict=True)
    expected = theirs.train_on_batch(x, [labels, target], sample_weight=weights, return_dict=True)
    assert_logs_close(mine, expected)
    batches = [(x[i:i + 8], [labels[i:i + 8], target[i:i + 8]], [weights[0][i:i + 8], weights[1][i:i + 8]])
               for i in range(0, 24, 8)]
    assert_logs_close(ours.evaluate((b for b in batches), verbose=0, return_dict=True),
                      theirs.evaluate((b for b in batches), verbose=0, return_dict=True))


def test_weights_per_output_of_the_wrong_count_or_length_are_refused():
    model = two_outputs(dl)
    model.compile(optimizer="sgd", loss=["sparse_categorical_crossentropy", "mse"])
    x, labels, target = data()
    w_classes, w_value = per_output_weights()
    with pytest.raises(ValueError, match="sample weights .* list of 1 arrays, but the model has 2"):
        model.evaluate(x, [labels, target], sample_weight=[w_classes], verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight \(output 1\) has 5 entries for 24 samples"):
        model.evaluate(x, [labels, target], sample_weight=[w_classes, w_value[:5]], verbose=0)
    with pytest.raises(ValueError, match="unknown \\['value'\\]"):
        model.evaluate(x, [labels, target], sample_weight={"classes": w_classes, "value": w_value}, verbose=0)
    with pytest.raises(ValueError, match="class_weight is not supported for a model of several outputs"):
        model.fit(x, [labels, target], class_weight={0: 1.0, 1: 2.0, 2: 1.0}, verbose=0)
