"""Learning-rate schedules (minidl/optimizer_schedules.py) against Keras' live, step by step, at
dl.optimizers.schedules.X (Keras' path) and under their old names; configs rebuild them."""
import numpy as np
import pytest

import minidl as dl
from minidl import optimizer_schedules, optimizers
from minidl.tensor import Tensor

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

CASES = [  # (class name, args, kwargs): the same for both libraries
    ("ExponentialDecay", (0.1, 10, 0.5), {}), ("ExponentialDecay", (0.1, 10, 0.5), {"staircase": True}),
    ("PiecewiseConstantDecay", ([5, 12], [0.1, 0.05, 0.01]), {}),
    ("PolynomialDecay", (0.1, 20), {}), ("PolynomialDecay", (0.1, 8), {"end_learning_rate": 0.01, "power": 2.0}),
    ("PolynomialDecay", (0.1, 7), {"power": 0.5, "cycle": True}),
    ("InverseTimeDecay", (0.1, 5, 0.5), {}), ("InverseTimeDecay", (0.1, 5, 0.5), {"staircase": True}),
    ("CosineDecay", (0.1, 20), {"alpha": 0.1}), ("CosineDecay", (0.0, 20), {"warmup_target": 0.2, "warmup_steps": 5}),
    ("CosineDecayRestarts", (0.1, 6), {}), ("CosineDecayRestarts", (0.1, 5), {"t_mul": 1.0, "m_mul": 0.5}),
    # first_decay_steps 3 with t_mul 1.5 puts restarts at steps 3, 7.5, 14.25, ...: at an exact
    # integer restart inside (4 steps: step 10) Keras' float32 log floors to the period before
    ("CosineDecayRestarts", (0.1, 3), {"t_mul": 1.5, "m_mul": 0.8, "alpha": 0.05}),
]
STEPS = list(range(0, 40)) + [57, 100]


@pytest.mark.parametrize("name, args, kwargs", CASES, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(CASES)])
def test_schedule_matches_keras_live_step_by_step(name, args, kwargs):
    keras = pytest.importorskip("keras")
    ours = getattr(dl.optimizers.schedules, name)(*args, **kwargs)
    theirs = getattr(keras.optimizers.schedules, name)(*args, **kwargs)
    for step in STEPS:
        expected = float(keras.ops.convert_to_numpy(theirs(step)))
        assert ours(step) == pytest.approx(expected, rel=1e-5, abs=1e-8), (name, step)
    twin = optimizer_schedules.deserialize(optimizer_schedules.serialize(ours))
    assert [twin(step) for step in STEPS] == [ours(step) for step in STEPS]


def test_an_optimizer_follows_a_schedule_as_keras_live(rng):
    keras = pytest.importorskip("keras")
    make = lambda module: module.PiecewiseConstantDecay([2, 4], [0.1, 0.05, 0.01])  # noqa: E731
    param = Tensor(rng.standard_normal(5).astype(np.float32), requires_grad=True)
    variable = keras.Variable(param.numpy().copy())
    ours = optimizers.SGD(learning_rate=make(dl.optimizers.schedules), momentum=0.9)
    theirs = keras.optimizers.SGD(learning_rate=make(keras.optimizers.schedules), momentum=0.9)
    for _ in range(6):
        gradient = rng.standard_normal(5).astype(np.float32)
        param.grad = gradient.copy()
        ours.apply([param])
        theirs.apply([keras.ops.convert_to_tensor(gradient)], [variable])
        np.testing.assert_allclose(param.numpy(), keras.ops.convert_to_numpy(variable), rtol=1e-5, atol=1e-6)
    rebuilt = optimizers.get(optimizers.serialize(ours))
    assert isinstance(rebuilt._learning_rate, optimizer_schedules.PiecewiseConstantDecay)


def test_the_old_names_still_work():
    assert optimizers.ExponentialDecay is dl.optimizers.schedules.ExponentialDecay
    assert optimizers.CosineDecay is dl.optimizers.schedules.CosineDecay
    assert optimizers.LearningRateSchedule is dl.optimizers.schedules.LearningRateSchedule


@pytest.mark.parametrize("make, message", [
    (lambda: optimizer_schedules.PiecewiseConstantDecay([1, 2], [0.1]), "values must have one more entry"),
    (lambda: optimizer_schedules.PiecewiseConstantDecay([3, 2], [0.1, 0.2, 0.3]), "boundaries must be increasing"),
    (lambda: optimizer_schedules.PolynomialDecay(0.1, 0), "decay_steps must be > 0"),
    (lambda: optimizer_schedules.deserialize({"class_name": "WarmupHold"}), "unknown learning-rate schedule"),
])
def test_bad_arguments_say_what_is_wrong(make, message):
    with pytest.raises(ValueError, match=message):
        make()
