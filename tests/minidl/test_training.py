"""The end of fit (minidl/training.py's fit_loop): with an optimizer of use_ema, the weights
become their moving averages once fit is over, as Keras 3 does, checked against Keras' trained
weights from the same start."""
import numpy as np
import pytest

import minidl as dl

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def small_net(lib):
    return lib.Sequential([lib.Input((5,)), lib.layers.Dense(6, activation="tanh"), lib.layers.Dense(3)])


def regression_data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)).astype("float32")
    return x, (x[:, :3] * 2 - x[:, 3:4]).astype("float32")


@pytest.mark.parametrize("kwargs", [{"use_ema": True, "ema_momentum": 0.8},
                                    {"use_ema": True, "ema_momentum": 0.5, "ema_overwrite_frequency": 4}])
def test_fit_with_use_ema_ends_with_keras_averaged_weights(kwargs):
    keras = pytest.importorskip("keras")
    x, y = regression_data()
    theirs, ours = small_net(keras), small_net(dl)
    ours.set_weights(theirs.get_weights())
    theirs.compile(optimizer=keras.optimizers.SGD(0.05, **kwargs), loss="mse")
    ours.compile(optimizer=dl.optimizers.SGD(0.05, **kwargs), loss="mse")
    theirs.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    ours.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)
    for mine, keras_weight in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(mine, keras_weight, rtol=1e-5, atol=1e-6)


def test_fit_without_use_ema_leaves_the_last_steps_weights():
    x, y = regression_data()
    dl.random.seed(1)
    first = small_net(dl)
    second = small_net(dl)
    second.set_weights(first.get_weights())
    first.compile(optimizer=dl.optimizers.SGD(0.05), loss="mse")
    second.compile(optimizer=dl.optimizers.SGD(0.05, use_ema=True, ema_momentum=0.8), loss="mse")
    first.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    second.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    # the same steps (EMA does not change the updates) but second ends on the averages
    differences = [np.abs(a - b).max() for a, b in zip(first.get_weights(), second.get_weights())]
    assert max(differences) > 1e-4
    averages = [second.optimizer.slot(w, "average") for w in second.trainable_weights]
    for weight, average in zip(second.get_weights(), averages):
        np.testing.assert_array_equal(weight, np.asarray(average))


def test_on_train_end_already_sees_the_averages():
    x, y = regression_data()
    model = small_net(dl)
    model.compile(optimizer=dl.optimizers.SGD(0.05, use_ema=True, ema_momentum=0.9), loss="mse")
    seen = {}

    def at_train_end(logs):
        seen["weights"] = model.get_weights()
        seen["averages"] = [np.array(model.optimizer.slot(w, "average")) for w in model.trainable_weights]
        seen["loss"] = model.evaluate(x, y, batch_size=48, verbose=0)

    model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
              callbacks=[dl.callbacks.LambdaCallback(on_train_end=at_train_end)])
    for weight, average in zip(seen["weights"], seen["averages"]):
        np.testing.assert_array_equal(weight, average)
    assert seen["loss"] == model.evaluate(x, y, batch_size=48, verbose=0)
