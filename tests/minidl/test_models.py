import io
import sys

import numpy as np
import pytest

import minidl as dl
from minidl import layers
from minidl.batches import class_weight_table, sample_weights
from minidl.data import Sequence


def blobs(n=300, seed=0):
    """Three Gaussian blobs in 4-D: easy, so a working fit must reach high accuracy."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    centres = np.array([[2, 0, 0, 1], [-2, 1, 0, 0], [0, -2, 2, 0]], dtype="float32")
    x = centres[y] + rng.normal(scale=0.7, size=(n, 4)).astype("float32")
    return x, y


def small_model(**compile_args):
    model = dl.Sequential([layers.Dense(16, activation="relu", input_shape=(4,)),
                           layers.Dense(3, activation="softmax")])
    model.compile(optimizer=compile_args.get("optimizer", "adam"),
                  loss=compile_args.get("loss", "sparse_categorical_crossentropy"), metrics=["accuracy"])
    return model


def test_fit_learns_and_evaluate_returns_loss_and_accuracy():
    x, y = blobs()
    model = small_model(optimizer=dl.optimizers.Adam(0.01))
    history = model.fit(x, y, epochs=15, batch_size=32, validation_split=0.2, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    loss, accuracy = model.evaluate(*blobs(200, seed=1), verbose=0)
    assert accuracy > 0.95 and loss < 0.3


def test_same_seed_same_training_run():
    x, y = blobs()
    results = []
    for _ in range(2):
        dl.random.seed(42)
        model = small_model()
        model.fit(x, y, epochs=2, verbose=0)
        results.append(model.predict(x[:5]))
    np.testing.assert_array_equal(results[0], results[1])


def test_hand_written_loop_matches_the_keras_way():
    x, y = blobs(64)
    model = dl.Sequential([layers.Dense(8, activation="tanh"), layers.Dense(3)])
    optimizer = dl.optimizers.SGD(0.1)
    losses = []
    for _ in range(30):
        loss = dl.losses.get("sparse_categorical_crossentropy")(y, model(x, training=True).softmax())
        loss.backward()
        optimizer.apply(model.trainable_weights)
        losses.append(float(loss.data))
    assert losses[-1] < 0.5 * losses[0]
    assert all(w.grad is None for w in model.trainable_weights)


def test_train_on_batch_and_test_on_batch():
    x, y = blobs(32)
    model = small_model()
    before = model.test_on_batch(x, y)
    for _ in range(20):
        model.train_on_batch(x, y)
    after = model.test_on_batch(x, y)
    assert after[0] < before[0]


def test_predict_is_batched_and_builds_no_graph():
    x, _ = blobs(70)
    model = small_model()
    out = model.predict(x, batch_size=16)
    assert out.shape == (70, 3) and isinstance(out, np.ndarray)
    np.testing.assert_allclose(out.sum(1), 1, rtol=1e-5)


def test_fit_accepts_a_sequence_of_batches():
    x, y = blobs()

    class Batches(Sequence):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return x[i * 30:(i + 1) * 30], y[i * 30:(i + 1) * 30]

    model = small_model(optimizer=dl.optimizers.Adam(0.01))
    history = model.fit(Batches(), epochs=8, verbose=0)
    assert history.history["accuracy"][-1] > 0.9


def test_summary_prints_shapes_and_parameter_counts():
    model = small_model()
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "(None, 16)" in text and "(None, 3)" in text
    assert "Total params: 131" in text      # (4*16 + 16) + (16*3 + 3)


def test_summary_of_an_unbuilt_model_explains_what_to_do():
    model = dl.Sequential([layers.Dense(3)])
    with pytest.raises(ValueError, match="not built yet"):
        model.summary()


def test_get_and_set_weights_over_all_layers_in_keras_order():
    model = small_model()
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(4, 16), (16,), (16, 3), (3,)]
    other = small_model()
    other.set_weights(model.get_weights())
    x, _ = blobs(5)
    np.testing.assert_array_equal(other.predict(x), model.predict(x))


def test_nan_loss_stops_fit_naming_epoch_and_batch():
    x, y = blobs(64)
    x[40] = np.nan
    model = small_model()
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch \d"):
        model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)


def test_label_out_of_range_names_label_and_classes():
    x, y = blobs(16)
    y[3] = 7
    model = small_model()
    with pytest.raises(ValueError, match="label 7 is out of range for 3 classes"):
        model.fit(x, y, epochs=1, verbose=0)


def test_mismatched_lengths_are_refused():
    x, y = blobs(16)
    with pytest.raises(ValueError, match="x has 16 samples but y has 15"):
        small_model().fit(x, y[:15], verbose=0)


def test_wrong_input_shape_names_layer_expected_and_received():
    model = small_model()
    with pytest.raises(ValueError, match=r"Dense 'dense\w*' was built for 4 input features, .*\(2, 5\)"):
        model.predict(np.ones((2, 5), dtype="float32"))


def test_unknown_optimizer_and_loss_list_known_names():
    model = dl.Sequential([layers.Dense(2)])
    with pytest.raises(ValueError, match="adam"):
        model.compile(optimizer="adamax_pro", loss="mse")
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy"):
        model.compile(optimizer="sgd", loss="hinge_pro")


def test_class_weight_changes_the_loss():
    x, y = blobs(60)
    model = small_model()
    plain = model.test_on_batch(x, y)[0]
    model2 = small_model()
    model2.set_weights(model.get_weights())
    weighted = model2.train_on_batch(x, y, class_weight={0: 0.0, 1: 0.0, 2: 0.0})
    assert weighted[0] == pytest.approx(0.0, abs=1e-7) and plain > 0


def test_input_layer_and_input_shape_build_alike():
    a = dl.Sequential([layers.Input((4,)), layers.Dense(3)])
    b = dl.Sequential([layers.Dense(3, input_shape=(4,))])
    assert a.built and b.built
    assert a.count_params() == b.count_params() == 15


def test_models_module_is_the_keras_import_path():
    from minidl.models import Sequential
    assert Sequential is dl.Sequential


def test_memory_is_freed_over_many_training_steps():
    import tracemalloc
    x, y = blobs(64)
    model = small_model()
    for _ in range(20):
        model.train_on_batch(x, y)
    tracemalloc.start()
    for _ in range(200):
        model.train_on_batch(x, y)
    first, _ = tracemalloc.get_traced_memory()
    for _ in range(800):
        model.train_on_batch(x, y)
    second, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert second - first < 200_000   # bytes: no graph kept alive from step to step


# --- argument checks (issue 14): each used to be silently wrong ---------------------------------
@pytest.mark.parametrize("batch_size", [0, -4, 2.5, True])
def test_fit_refuses_a_bad_batch_size_naming_it(batch_size):
    x, y = blobs(16)
    with pytest.raises(ValueError, match=rf"fit: batch_size must be a positive int, got {batch_size!r}"):
        small_model().fit(x, y, batch_size=batch_size, verbose=0)   # 0 used to mean 32


@pytest.mark.parametrize("where", ["predict", "evaluate"])
def test_predict_and_evaluate_refuse_a_negative_batch_size(where):
    x, y = blobs(16)
    model = small_model()
    with pytest.raises(ValueError, match=f"{where}: batch_size must be a positive int, got -1"):
        model.predict(x, batch_size=-1) if where == "predict" else model.evaluate(x, y, batch_size=-1, verbose=0)


@pytest.mark.parametrize("epochs", [0, -3, 1.5, None])
def test_fit_refuses_epochs_that_are_not_a_positive_int(epochs):
    x, y = blobs(16)
    model = small_model()
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"fit: epochs must be a positive int"):
        model.fit(x, y, epochs=epochs, verbose=0)                  # 0 and -3 trained nothing, silently
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("class_weight, message", [
    ({-1: 5.0}, r"class_weight keys must be class indices \(ints >= 0\), got -1"),  # re-weighted class 2
    ({10 ** 9: 1.0}, r"class_weight names class 1000000000, but the labels have 3 classes"),  # 8 GB table
    ({0: 1.0, 5: 2.0, 7: 1.0}, r"names classes 5, 7, but the labels have 3 classes \(0 to 2\)"),
    ({0: -1.0}, r"class_weight\[0\] must be a finite number >= 0, got -1.0"),
    ({0: float("nan")}, r"class_weight\[0\] must be a finite number >= 0"),
    ({"a": 1.0}, r"class_weight keys must be class indices"),
    ({}, r"class_weight must be a non-empty dict"),
])
def test_fit_refuses_bad_class_weights_before_training(class_weight, message):
    x, y = blobs(32)
    model = small_model()
    with pytest.raises(ValueError, match=message):
        model.fit(x, y, epochs=1, class_weight=class_weight, verbose=0)
    with pytest.raises(ValueError, match=message):
        model.train_on_batch(x, y, class_weight=class_weight)


def test_class_weight_of_an_unbuilt_model_is_checked_against_the_labels():
    x, y = blobs(32)
    model = dl.Sequential([layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="names class 3, but the labels have 3 classes"):
        model.fit(x, y, epochs=1, class_weight={3: 1.0}, verbose=0)


def test_class_weight_weights_each_sample_by_its_class():
    x, y = blobs(60)
    model = small_model()
    weights = sample_weights(model, y, None, class_weight_table({2: 3.0, 0: 0.5}, "t"), "t")
    np.testing.assert_array_equal(weights, np.where(y == 2, 3.0, np.where(y == 0, 0.5, 1.0)))
    one_hot = np.eye(3, dtype="float32")[y]
    np.testing.assert_array_equal(sample_weights(model, one_hot, None, class_weight_table(
        {2: 3.0, 0: 0.5}, "t"), "t"), weights)


# --- a NaN step leaves the model as it was (issue 14) ---------------------------------------------
def _bn_model():
    model = dl.Sequential([layers.Dense(8, activation="relu", input_shape=(4,)), layers.BatchNormalization(),
                           layers.Dense(3, activation="softmax")])
    model.compile(optimizer=dl.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    return model


def test_a_nan_loss_leaves_every_weight_as_before_the_bad_step():
    x, y = blobs(64)
    x[40] = np.nan                                  # in the third batch of 16
    model = _bn_model()
    two_good_steps = _bn_model()
    two_good_steps.set_weights(model.get_weights())
    two_good_steps.fit(x[:32], y[:32], epochs=1, batch_size=16, shuffle=False, verbose=0)
    with pytest.raises(FloatingPointError, match=r"the loss became nan at epoch 1, batch 3; that step was not "
                                                 r"applied, the weights are those before it"):
        model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), two_good_steps.get_weights()):
        assert np.isfinite(a).all()                 # BatchNormalization's moving statistics too
        np.testing.assert_array_equal(a, b)
    assert all(w.grad is None for w in model.trainable_weights)
    assert model.optimizer.iterations == 2


def test_a_nan_gradient_with_a_finite_loss_is_caught_before_the_update():
    def sqrt_of_zero(y_true, y_pred):    # 0 in value; its gradient is 0 * (1 / 0): NaN
        return (y_pred - y_pred).sqrt().sum(axis=-1)

    x, y = blobs(32)
    model = dl.Sequential([layers.Dense(3, input_shape=(4,), name="first"), layers.Dense(3, name="last")])
    model.compile(optimizer="sgd", loss=sqrt_of_zero)
    before = model.get_weights()
    with np.errstate(divide="ignore", invalid="ignore"), \
            pytest.raises(FloatingPointError, match=r"the gradient of first/kernel \(and 3 more weights\) "
                                                    r"became NaN or inf, with a finite loss of 0 at epoch 1, batch 1"):
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)     # was all NaN: the update came before the check


def test_terminate_on_nan_false_still_carries_on():
    x, y = blobs(32)
    x[3] = np.nan
    model = small_model()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", terminate_on_nan=False)
    history = model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    assert np.isnan(history.history["loss"][0])


# --- verbose="auto" (issue 14) -------------------------------------------------------------------
class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_verbose_auto_writes_a_line_per_epoch_when_stderr_is_not_a_terminal(monkeypatch):
    x, y = blobs(64)
    log = io.StringIO()                     # a CI log or `2> file`: not a terminal
    monkeypatch.setattr(sys, "stderr", log)
    small_model().fit(x, y, epochs=2, batch_size=8)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()       # was a progress bar redrawn with carriage returns
    assert [line[:15] for line in lines] == ["Epoch 1/2 - los", "Epoch 2/2 - los"]


def test_verbose_auto_draws_the_progress_bar_on_a_terminal(monkeypatch):
    x, y = blobs(64)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    small_model().fit(x, y, epochs=1, batch_size=8)
    assert "8/8" in terminal.getvalue() and "Epoch 1/1 - loss" not in terminal.getvalue()


def test_verbose_must_be_auto_0_1_or_2():
    x, y = blobs(16)
    with pytest.raises(ValueError, match="fit: verbose must be 'auto', 0, 1 or 2, got 3"):
        small_model().fit(x, y, verbose=3)


# --- building is linear in the number of layers (issue 14) ---------------------------------------
def test_a_deep_sequential_is_built_once_not_once_per_layer(monkeypatch):
    builds = []
    original = dl.Sequential.build
    monkeypatch.setattr(dl.Sequential, "build", lambda self, shape: builds.append(shape) or original(self, shape))
    model = dl.Sequential([layers.Input((2,))] + [layers.Dense(2) for _ in range(300)])
    assert len(builds) == 1 and len(model.output_shapes) == 300   # model.layers leaves out the InputLayer
    model.add(layers.Dense(4))                  # one more trial call, not a rebuild of 301 layers
    assert len(builds) == 1 and model.output_shapes[-1] == (None, 4)
    assert model.count_params() == 300 * 6 + 12
