import numpy as np
import pytest

import minidl as dl
from minidl import layers
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
