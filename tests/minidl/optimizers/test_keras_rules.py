"""The optimizers and options added to minidl/optimizers/ for Keras users (Adagrad, Adadelta,
Adamax, Nadam, Lion; use_ema, gradient_accumulation_steps), checked step by step against Keras
live from the same weights and gradients. A separate file from test_optimizers.py (the first
optimizers and the base step) so that the two sets of cases read on their own."""
import numpy as np
import pytest

from minidl import optimizers
from minidl.tensor import Tensor

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _params(rng):
    return [Tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True),
            Tensor(rng.standard_normal((3,)).astype(np.float32), requires_grad=True)]


def _grad_sequence(rng, steps=7):
    return [[rng.standard_normal((4, 3)).astype(np.float32) * 3, rng.standard_normal((3,)).astype(np.float32)]
            for _ in range(steps)]


CASES = [
    ("Adagrad", {}), ("Adagrad", {"learning_rate": 0.1, "initial_accumulator_value": 0.5}),
    ("Adadelta", {}), ("Adadelta", {"learning_rate": 1.0, "rho": 0.9}),
    ("Adamax", {}), ("Adamax", {"learning_rate": 0.02, "beta_1": 0.8, "beta_2": 0.99}),
    ("Nadam", {}), ("Nadam", {"learning_rate": 0.01, "beta_1": 0.85}),
    ("Lion", {}), ("Lion", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.95}),
    ("Nadam", {"learning_rate": 0.01, "weight_decay": 0.1, "clipnorm": 1.0}),
    ("Adam", {"learning_rate": 0.05, "use_ema": True}),
    ("SGD", {"learning_rate": 0.1, "use_ema": True, "ema_momentum": 0.5, "ema_overwrite_frequency": 3}),
    ("Adam", {"learning_rate": 0.05, "gradient_accumulation_steps": 3}),
    ("Nadam", {"learning_rate": 0.05, "gradient_accumulation_steps": 2, "global_clipnorm": 1.0}),
    ("RMSprop", {"learning_rate": 0.05, "gradient_accumulation_steps": 2, "use_ema": True,
                 "ema_overwrite_frequency": 2}),
]


@pytest.mark.parametrize("name, kwargs", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_matches_keras_step_by_step(name, kwargs, rng):
    keras = pytest.importorskip("keras")
    params = _params(rng)
    keras_vars = [keras.Variable(p.numpy().copy()) for p in params]
    ours, theirs = getattr(optimizers, name)(**kwargs), getattr(keras.optimizers, name)(**kwargs)
    grads = _grad_sequence(rng)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g.copy()
        ours.apply(params)
        theirs.apply([keras.ops.convert_to_tensor(g) for g in step_grads], keras_vars)
        for p, v in zip(params, keras_vars):
            np.testing.assert_allclose(p.numpy(), keras.ops.convert_to_numpy(v), rtol=1e-5, atol=3e-6)
    assert ours.iterations == int(keras.ops.convert_to_numpy(theirs.iterations))
    assert ours.calls == len(grads)
    ours.finalize_variable_values(params)
    theirs.finalize_variable_values(keras_vars)
    for p, v in zip(params, keras_vars):  # with use_ema: the weights are now the averages, in both
        np.testing.assert_allclose(p.numpy(), keras.ops.convert_to_numpy(v), rtol=1e-5, atol=3e-6)


@pytest.mark.parametrize("name", ["Adagrad", "Adadelta", "Adamax", "Nadam", "Lion"])
def test_new_optimizers_by_name_and_config(name):
    optimizer = optimizers.get(name.lower())
    assert type(optimizer).__name__ == name
    twin = optimizers.get(optimizers.serialize(optimizers.get(name)))
    assert twin.get_config() == optimizer.get_config()
    configured = getattr(optimizers, name)(use_ema=True, gradient_accumulation_steps=4)
    config = configured.get_config()
    assert config["use_ema"] and config["gradient_accumulation_steps"] == 4
    assert type(configured).from_config(config).get_config() == config


def test_accumulation_leaves_the_weights_alone_between_updates(rng):
    params = _params(rng)
    before = [p.numpy().copy() for p in params]
    optimizer = optimizers.SGD(learning_rate=0.1, gradient_accumulation_steps=2)
    grads = _grad_sequence(rng, 2)
    for p, g in zip(params, grads[0]):
        p.grad = g
    optimizer.apply(params)
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.numpy(), b)
    for p, g in zip(params, grads[1]):
        p.grad = g
    optimizer.apply(params)
    for p, b, g0, g1 in zip(params, before, grads[0], grads[1]):  # one SGD step with the mean gradient
        np.testing.assert_allclose(p.numpy(), b - 0.1 * (g0 + g1) / 2, rtol=1e-6)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"gradient_accumulation_steps": 0}, ValueError, "gradient_accumulation_steps must be an int >= 1"),
    ({"ema_momentum": 1.5}, ValueError, r"ema_momentum must be in \[0, 1\]"),
    ({"loss_scale_factor": 128.0}, NotImplementedError, "loss_scale_factor is not supported"),
])
def test_bad_options_say_what_is_wrong(kwargs, error, message):
    with pytest.raises(error, match=message):
        optimizers.Adam(**kwargs)


def test_a_keras_optimizer_minidl_lacks_is_named_as_not_supported():
    with pytest.raises(NotImplementedError, match="the Keras optimizer 'ftrl' is not supported"):
        optimizers.get("ftrl")
