"""Optimizers: Keras 3's update formulas step by step, slots, clipping, schedules, errors."""
import math

import numpy as np
import pytest

import minidl as dl
from minidl import optimizers
from minidl.tensor import Tensor

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _params(rng, dtype=np.float32):
    return [Tensor(rng.standard_normal((4, 3)).astype(dtype), requires_grad=True),
            Tensor(rng.standard_normal((3,)).astype(dtype), requires_grad=True)]


def _grad_sequence(rng, steps=5):
    return [[rng.standard_normal((4, 3)).astype(np.float32) * 3,
             rng.standard_normal((3,)).astype(np.float32)] for _ in range(steps)]


CASES = [
    ("SGD", {}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    ("RMSprop", {}),
    ("RMSprop", {"learning_rate": 0.01, "momentum": 0.5, "centered": True}),
    ("RMSprop", {"learning_rate": 0.01, "rho": 0.8}),
    ("Adam", {}),
    ("Adam", {"learning_rate": 0.01, "amsgrad": True, "beta_1": 0.8}),
    ("Adam", {"learning_rate": 0.05, "clipnorm": 1.0}),
    ("Adam", {"learning_rate": 0.05, "clipvalue": 0.5}),
    ("Adam", {"learning_rate": 0.05, "global_clipnorm": 2.0}),
    ("SGD", {"learning_rate": 0.1, "weight_decay": 0.05}),
    ("AdamW", {}),
    ("AdamW", {"learning_rate": 0.01, "weight_decay": 0.1}),
]


@pytest.mark.parametrize("name, kwargs", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_matches_keras_step_by_step(name, kwargs, rng):
    keras = pytest.importorskip("keras")
    params = _params(rng)
    grads = _grad_sequence(rng)
    kvars = [keras.Variable(p.numpy().copy()) for p in params]
    ours = getattr(optimizers, name)(**kwargs)
    theirs = getattr(keras.optimizers, name)(**kwargs)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g.copy()
        ours.apply(params)
        theirs.apply([keras.ops.convert_to_tensor(g) for g in step_grads], kvars)
        for p, v in zip(params, kvars):
            np.testing.assert_allclose(p.numpy(), keras.ops.convert_to_numpy(v), rtol=1e-5, atol=3e-6)
    assert ours.iterations == len(grads)
    assert all(p.grad is None for p in params)
    assert all(p.dtype == np.float32 for p in params)


def test_schedules_match_keras():
    keras = pytest.importorskip("keras")
    pairs = [
        (optimizers.ExponentialDecay(0.1, 10, 0.5), keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)),
        (optimizers.ExponentialDecay(0.1, 10, 0.5, staircase=True),
         keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5, staircase=True)),
        (optimizers.CosineDecay(0.1, 20, alpha=0.1), keras.optimizers.schedules.CosineDecay(0.1, 20, alpha=0.1)),
        (optimizers.CosineDecay(0.0, 20, warmup_target=0.2, warmup_steps=5),
         keras.optimizers.schedules.CosineDecay(0.0, 20, warmup_target=0.2, warmup_steps=5)),
    ]
    for ours, theirs in pairs:
        for step in [0, 1, 4, 5, 9, 10, 15, 20, 30]:
            expected = float(keras.ops.convert_to_numpy(theirs(step)))
            assert ours(step) == pytest.approx(expected, rel=1e-6, abs=1e-9), (type(ours).__name__, step)


def test_adam_with_schedule_matches_keras(rng):
    keras = pytest.importorskip("keras")
    params = _params(rng)
    kvars = [keras.Variable(p.numpy().copy()) for p in params]
    ours = optimizers.Adam(optimizers.ExponentialDecay(0.05, 2, 0.5))
    theirs = keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(0.05, 2, 0.5))
    for step_grads in _grad_sequence(rng):
        for p, g in zip(params, step_grads):
            p.grad = g
        ours.apply(params)
        theirs.apply([keras.ops.convert_to_tensor(g) for g in step_grads], kvars)
    for p, v in zip(params, kvars):
        np.testing.assert_allclose(p.numpy(), keras.ops.convert_to_numpy(v), rtol=1e-5, atol=3e-6)
    assert ours.learning_rate == pytest.approx(0.05 * 0.5 ** (5 / 2))


def _adam_reference(w, grads, lr=0.001, b1=0.9, b2=0.999, eps=1e-7):
    """Adam written out in float64, the textbook way (bias-corrected m̂ and v̂, ε hat)."""
    w = w.astype(np.float64)
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        w = w - alpha * m / (np.sqrt(v) + eps)
    return w


def test_adam_matches_formula_in_float64(rng):
    dl.set_floatx("float64")
    w0 = rng.standard_normal((5, 2))
    grads = [rng.standard_normal((5, 2)) for _ in range(4)]
    p = Tensor(w0.copy(), requires_grad=True)
    opt = optimizers.Adam(learning_rate=0.01)
    for g in grads:
        p.grad = g
        opt.apply([p])
    np.testing.assert_allclose(p.data, _adam_reference(w0, grads, lr=0.01), rtol=1e-12)
    assert p.dtype == np.float64 and opt.slot(p, "momentum").dtype == np.float64


def _adam_variants_reference(w, grads, lr, weight_decay=0.0, amsgrad=False, beta_2=0.999, b1=0.9, eps=1e-7):
    """AdamW (decay before the step, Keras' order) and AMSGrad written out plainly, in float64."""
    m, v, v_max = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        w = w - w * weight_decay * lr
        m = b1 * m + (1 - b1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        v_max = np.maximum(v_max, v)
        alpha = lr * math.sqrt(1 - beta_2 ** t) / (1 - b1 ** t)
        w = w - alpha * m / (np.sqrt(v_max if amsgrad else v) + eps)
    return w


@pytest.mark.parametrize("name, kwargs", [("AdamW", {"weight_decay": 0.1}),
                                          ("Adam", {"amsgrad": True, "beta_2": 0.5}),
                                          ("AdamW", {"weight_decay": 0.02, "amsgrad": True, "beta_2": 0.5})])
def test_adam_variants_match_the_plain_formula_in_float64(name, kwargs, rng):
    # the in-place update (one scratch buffer, out=) against the formula with fresh arrays; the
    # gradients shrink over the steps and β₂ = 0.5 lets v follow them down, so that AMSGrad's
    # running maximum differs from v
    dl.set_floatx("float64")
    w0 = rng.standard_normal((6, 3))
    grads = [rng.standard_normal((6, 3)) * 2.0 ** -k for k in range(6)]
    p = Tensor(w0.copy(), requires_grad=True)
    opt = getattr(optimizers, name)(learning_rate=0.02, **kwargs)
    for g in grads:
        p.grad = g
        opt.apply([p])
    np.testing.assert_allclose(p.data, _adam_variants_reference(w0, grads, 0.02, **kwargs), rtol=1e-12, atol=1e-15)
    assert not np.allclose(p.data, w0, rtol=1e-3)   # the steps moved the weights


def test_float32_stays_float32_even_with_float64_grads(rng):
    p = Tensor(rng.standard_normal((3, 3)).astype(np.float32), requires_grad=True)
    data = p.data
    p.grad = rng.standard_normal((3, 3))  # float64
    opt = optimizers.Adam()
    opt.apply([p])
    assert p.data is data and p.dtype == np.float32  # updated in place
    assert all(a.dtype == np.float32 for a in opt.variables())


def test_params_without_grad_are_skipped_and_grads_cleared(rng):
    a, b = _params(rng)
    before = b.numpy().copy()
    a.grad = np.ones_like(a.data)
    opt = optimizers.SGD(learning_rate=0.5)
    opt.apply([a, b])
    np.testing.assert_array_equal(b.numpy(), before)
    assert a.grad is None and opt.iterations == 1


def test_shared_gradient_array_is_not_modified(rng):
    """y = a + b gives a and b the same gradient array: clipping must not edit it in place."""
    a = Tensor(np.zeros(3, np.float32), requires_grad=True)
    b = Tensor(np.zeros(3, np.float32), requires_grad=True)
    g = np.full(3, 10.0, np.float32)
    a.grad = g
    b.grad = g
    optimizers.SGD(learning_rate=1.0, clipnorm=1.0).apply([a, b])
    np.testing.assert_array_equal(g, 10.0)
    np.testing.assert_allclose(a.numpy(), -10 / np.sqrt(300), rtol=1e-6)
    np.testing.assert_allclose(b.numpy(), a.numpy())


def test_hand_loop_trains_a_linear_model(rng):
    x = rng.standard_normal((64, 3)).astype(np.float32)
    true_w = np.array([[1.0], [-2.0], [0.5]], np.float32)
    y = x @ true_w + 0.3
    w = Tensor(np.zeros((3, 1), np.float32), requires_grad=True)
    b = Tensor(np.zeros((1,), np.float32), requires_grad=True)
    opt = optimizers.Adam(learning_rate=0.05)
    for _ in range(300):
        loss = ((Tensor(x) @ w + b - Tensor(y)) ** 2).mean()
        loss.backward()
        opt.apply([w, b])
    np.testing.assert_allclose(w.numpy(), true_w, atol=2e-2)
    np.testing.assert_allclose(b.numpy(), [0.3], atol=2e-2)


def test_learning_rate_is_settable_and_schedules_are_not_overwritten():
    opt = optimizers.SGD(learning_rate=0.1)
    opt.learning_rate = 0.01
    assert opt.learning_rate == 0.01 and opt.current_learning_rate() == 0.01
    scheduled = optimizers.SGD(learning_rate=optimizers.CosineDecay(0.1, 10))
    assert scheduled.learning_rate == pytest.approx(0.1)
    with pytest.raises(TypeError, match="schedule"):
        scheduled.learning_rate = 0.5
    custom = optimizers.SGD(learning_rate=lambda step: 0.1 / (1 + step))
    custom.iterations = 4
    assert custom.learning_rate == pytest.approx(0.02)


def test_get_names_instances_and_unknown():
    assert isinstance(optimizers.get("ADAM"), optimizers.Adam)
    assert isinstance(optimizers.get("sgd"), optimizers.SGD)
    assert isinstance(optimizers.get("AdamW"), optimizers.AdamW)
    assert isinstance(optimizers.get("rmsprop"), optimizers.RMSprop)
    opt = optimizers.Adam(learning_rate=0.1)
    assert optimizers.get(opt) is opt
    with pytest.raises(ValueError, match=r"unknown optimizer 'adagrad_v2'.*sgd, rmsprop, adam, adamw"):
        optimizers.get("adagrad_v2")


def test_defaults_are_keras_defaults():
    assert optimizers.SGD().get_config()["learning_rate"] == 0.01
    assert optimizers.Adam().get_config() == {
        "name": "adam", "learning_rate": 0.001, "weight_decay": None, "clipnorm": None,
        "global_clipnorm": None, "clipvalue": None, "beta_1": 0.9, "beta_2": 0.999,
        "epsilon": 1e-7, "amsgrad": False, "use_ema": False, "ema_momentum": 0.99,
        "ema_overwrite_frequency": None, "gradient_accumulation_steps": None}
    assert optimizers.AdamW().weight_decay == 0.004
    rms = optimizers.RMSprop().get_config()
    assert (rms["rho"], rms["momentum"], rms["epsilon"], rms["centered"]) == (0.9, 0.0, 1e-7, False)


def test_config_round_trip_with_schedule():
    import json
    opt = optimizers.AdamW(learning_rate=optimizers.ExponentialDecay(0.1, 5, 0.9, staircase=True),
                           clipnorm=2.0)
    again = optimizers.get(json.loads(json.dumps(optimizers.serialize(opt))))
    assert type(again) is optimizers.AdamW and again.get_config() == opt.get_config()


def test_bad_arguments():
    with pytest.raises(ValueError, match="only one of clipnorm, clipvalue"):
        optimizers.Adam(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="learning_rate must be"):
        optimizers.SGD(learning_rate=-1)
    with pytest.raises(ValueError, match="AdamW: weight_decay"):
        optimizers.AdamW(weight_decay=None)
    p = Tensor(np.zeros(3, np.float32), requires_grad=True)
    p.grad = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match=r"gradient of shape \(4,\) .* shape \(3,\)"):
        optimizers.SGD().apply([p])


@pytest.mark.cupy
def test_adam_on_cupy_matches_numpy(rng):
    import cupy
    w0 = rng.standard_normal((4, 3)).astype(np.float32)
    grads = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(3)]
    cpu = Tensor(w0.copy(), requires_grad=True)
    gpu = Tensor(cupy.asarray(w0), requires_grad=True)
    opt_cpu, opt_gpu = optimizers.Adam(0.01, clipnorm=1.0), optimizers.Adam(0.01, clipnorm=1.0)
    for g in grads:
        cpu.grad, gpu.grad = g, cupy.asarray(g)
        opt_cpu.apply([cpu])
        opt_gpu.apply([gpu])
    assert isinstance(gpu.data, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(gpu.data), cpu.data, rtol=1e-5, atol=3e-6)


def test_reset_forgets_slots_but_keeps_iterations(rng):
    p = Tensor(rng.standard_normal(3).astype(np.float32), requires_grad=True)
    opt = optimizers.Adam()
    p.grad = np.ones(3, np.float32)
    opt.apply([p])
    assert len(opt.variables()) == 2
    opt.reset()
    assert opt.variables() == [] and opt.iterations == 1


def test_keras_forms_apply_grads_and_vars(rng):
    a, b = _params(rng), _params(rng)
    for p, q in zip(a, b):
        q.data = p.data.copy()
    grads = [np.ones_like(p.data) for p in a]
    for p, g in zip(a, grads):
        p.grad = g
    optimizers.Adam(0.1).apply(a)
    optimizers.Adam(0.1).apply(grads, b)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p.data, q.data)
        assert q.grad is None
    optimizers.SGD(0.1).apply_gradients(zip(grads, b))
    np.testing.assert_allclose(b[0].data, a[0].data - 0.1, rtol=1e-6)
