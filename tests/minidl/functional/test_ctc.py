"""ctc_loss: values and logit gradients against torch (fixtures, and live), brute force over all
paths, float64 gradient checks, zero_infinity, and errors that say what is wrong."""
from __future__ import annotations

import itertools
import os

import numpy as np
import pytest

import minidl.functional as F
from minidl.functional.ctc import ctc_loss
from minidl.gradcheck import gradcheck
from minidl.tensor import Tensor

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "reference", "fixtures")
CASES = ("varied", "edge", "blank_last")
REDUCTIONS = ("none", "sum", "mean")


def minidl_ctc(logits, targets, input_lengths, target_lengths, blank, reduction, zero_infinity):
    """minidl's loss and logit gradient (ones upstream) of ctc_loss(log_softmax(logits))."""
    x = Tensor(logits.copy(), requires_grad=True)
    loss = ctc_loss(F.log_softmax(x), targets, input_lengths, target_lengths, blank=blank,
                    reduction=reduction, zero_infinity=zero_infinity)
    loss.backward(np.ones(loss.shape, dtype=loss.dtype))
    return loss.numpy(), x.grad


def _assert_matches(ours, theirs, rtol=1e-6, atol=1e-10):
    # equal_nan (the default) also pins where torch's gradient is NaN (infinite loss)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("zero_infinity", [False, True])
def test_matches_torch_fixtures(case, reduction, zero_infinity):
    data = np.load(os.path.join(FIXTURES, f"ctc_{case}.npz"), allow_pickle=False)
    loss, grad = minidl_ctc(data["logits"], data["targets"], data["input_lengths"],
                            data["target_lengths"], int(data["blank"]), reduction, zero_infinity)
    key = f"{reduction}_{int(zero_infinity)}"
    _assert_matches(loss, data[f"loss_{key}"])
    _assert_matches(grad, data[f"grad_{key}"])


def _random_batch(rng, batch, time, classes, blank=0):
    target_lengths = rng.integers(0, time // 2 + 2, size=batch)
    width = max(int(target_lengths.max()), 1)
    labels = [k for k in range(classes) if k != blank]
    targets = rng.choice(labels, size=(batch, width))
    targets[rng.random(size=targets.shape) < 0.3] = labels[0]  # plenty of repeated labels
    input_lengths = rng.integers(1, time + 1, size=batch)
    input_lengths[0] = time
    logits = rng.normal(scale=2.0, size=(batch, time, classes))
    return logits, targets, input_lengths, target_lengths


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_torch_live(seed, reduction):
    pytest.importorskip("torch")
    from tests.reference.make_ctc_fixtures import torch_ctc
    rng = np.random.default_rng(seed)
    blank = int(rng.integers(0, 6))
    batch = (logits, targets, input_lengths, target_lengths) = _random_batch(rng, 6, 15, 6, blank)
    for zero_infinity in (False, True):
        ours = minidl_ctc(*batch, blank, reduction, zero_infinity)
        theirs = torch_ctc(logits, targets, input_lengths, target_lengths, blank, reduction,
                           zero_infinity)
        _assert_matches(ours[0], theirs[0])
        _assert_matches(ours[1], theirs[1])


def test_matches_torch_live_float32_benchmark_shape():
    pytest.importorskip("torch")
    from tests.reference.make_ctc_fixtures import torch_ctc
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(32, 200, 11)).astype(np.float32)
    targets = rng.integers(1, 11, size=(32, 7))
    lengths = (np.full(32, 200), np.full(32, 7))
    loss, grad = minidl_ctc(logits, targets, *lengths, 0, "mean", False)
    assert loss.dtype == np.float32 and grad.dtype == np.float32
    torch_loss, torch_grad = torch_ctc(logits.astype(np.float64), targets, *lengths, 0, "mean", False)
    np.testing.assert_allclose(loss, torch_loss, rtol=1e-5)
    np.testing.assert_allclose(grad, torch_grad, rtol=1e-3, atol=1e-7)


def _collapse(path, blank):
    merged = [k for i, k in enumerate(path) if i == 0 or k != path[i - 1]]
    return tuple(k for k in merged if k != blank)


def test_equals_brute_force_sum_over_paths(rng):
    """-log of the summed probability of every path that collapses to the target."""
    time, classes = 5, 3
    log_probs = F.log_softmax(Tensor(rng.normal(size=(1, time, classes)))).numpy()[0]
    for target in [(), (1,), (1, 1), (2, 1), (1, 2, 1), (1, 1, 2)]:
        total = sum(np.exp(sum(log_probs[t, k] for t, k in enumerate(path)))
                    for path in itertools.product(range(classes), repeat=time)
                    if _collapse(path, 0) == target)
        padded = np.array([list(target) + [1] * (3 - len(target))])
        loss = ctc_loss(Tensor(log_probs[None]), padded, [time], [len(target)], reduction="none")
        np.testing.assert_allclose(loss.numpy(), [-np.log(total)], rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS, ids=lambda reduction: f"ctc_loss-{reduction}")
def test_gradcheck_through_log_softmax(reduction, rng):
    logits = rng.normal(size=(3, 5, 4))
    targets = np.array([[1, 1], [2, 3], [3, 0]])
    fn = lambda x: ctc_loss(F.log_softmax(x), targets, [5, 4, 2], [2, 2, 1], reduction=reduction)  # noqa: E731
    gradcheck(fn, (logits,))


@pytest.mark.parametrize("shape", [(1, 1, 2), (2, 4, 3), (1, 6, 5)],
                         ids=lambda shape: "ctc_loss-" + "x".join(map(str, shape)))
def test_gradcheck_true_derivative_wrt_log_probs(shape, rng):
    """The gradient is ∂loss/∂log_probs itself, also off the simplex (unnormalised inputs)."""
    batch, time, classes = shape
    log_probs = rng.normal(size=shape) - 1.0
    targets = rng.integers(1, classes, size=(batch, 2))
    target_lengths = np.minimum(rng.integers(0, 3, size=batch), (time + 1) // 2)
    fn = lambda x: ctc_loss(x, targets, [time] * batch, target_lengths, reduction="none")  # noqa: E731
    gradcheck(fn, (log_probs,))


def test_zero_infinity_gives_zero_loss_and_zero_gradient(rng):
    logits = rng.normal(size=(2, 3, 4))
    targets = np.array([[1, 1, 1], [1, 2, 0]])  # [1, 1, 1] needs 5 frames: impossible in 3
    loss, grad = minidl_ctc(logits, targets, [3, 3], [3, 2], 0, "none", True)
    assert loss[0] == 0 and np.all(grad[0] == 0)
    assert np.isfinite(loss[1]) and np.any(grad[1] != 0)
    loss, grad = minidl_ctc(logits, targets, [3, 3], [3, 2], 0, "none", False)
    assert loss[0] == np.inf and np.all(np.isnan(grad[0])) and np.all(np.isfinite(grad[1]))


def test_frames_past_input_length_get_no_gradient(rng):
    loss, grad = minidl_ctc(rng.normal(size=(2, 6, 3)), np.array([[1, 2], [2, 0]]), [6, 3],
                            [2, 1], 0, "sum", False)
    assert np.all(grad[1, 3:] == 0) and np.any(grad[1, :3] != 0)


def test_mean_divides_by_target_length_then_averages(rng):
    logits = rng.normal(size=(3, 6, 4))
    targets, input_lengths, target_lengths = np.array([[1, 2, 3], [1, 0, 0], [0, 0, 0]]), [6, 5, 4], [3, 1, 0]
    per_sample = minidl_ctc(logits, targets, input_lengths, target_lengths, 0, "none", False)[0]
    mean = minidl_ctc(logits, targets, input_lengths, target_lengths, 0, "mean", False)[0]
    np.testing.assert_allclose(mean, np.mean(per_sample / np.array([3, 1, 1])), rtol=1e-12)


def test_accepts_tensors_and_lists_for_targets_and_lengths(rng):
    log_probs = F.log_softmax(Tensor(rng.normal(size=(2, 4, 3))))
    a = ctc_loss(log_probs, Tensor(np.array([[1, 2], [2, 0]])), Tensor(np.array([4, 3])),
                 Tensor(np.array([2, 1])), reduction="none")
    b = ctc_loss(log_probs, [[1, 2], [2, 0]], [4, 3], [2, 1], reduction="none")
    np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("kwargs, message", [
    (dict(log_probs=np.zeros((4, 3))), r"log_probs must be \(batch, time, classes\), got shape \(4, 3\)"),
    (dict(log_probs=np.zeros((2, 0, 3))), r"at least one frame, got shape \(2, 0, 3\)"),
    (dict(input_lengths=[5, 4]), r"input_lengths must be in \[0, 4\] .*got 5"),
    (dict(input_lengths=[4]), r"input_lengths must have shape \(2,\) .*got shape \(1,\)"),
    (dict(target_lengths=[3, 1]), r"target_lengths must be in \[0, 2\] .*got 3"),
    (dict(target_lengths=[[2, 1]]), r"target_lengths must have shape \(2,\) .*got shape \(1, 2\)"),
    (dict(targets=[[1, 0], [2, 1]]), r"must not contain the blank class 0 \(found in sample 0\)"),
    (dict(targets=[[1, 3], [2, 1]]), r"target labels must be in \[0, 3\) for 3 classes, got 3"),
    (dict(targets=[[1, 2]]), r"targets must be \(batch, max_target_length\) = \(2, S\), got shape \(1, 2\)"),
    (dict(targets=[[1.5, 2], [2, 1]]), r"targets must be whole numbers"),
    (dict(blank=3), r"blank must be a class index in \[0, 3\), got 3"),
    (dict(reduction="avg"), r"reduction must be one of .*got 'avg'"),
])
def test_bad_input_names_argument_expected_and_received(kwargs, message):
    arguments = dict(log_probs=np.zeros((2, 4, 3)), targets=[[1, 2], [2, 1]], input_lengths=[4, 3],
                     target_lengths=[2, 1])
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        ctc_loss(**arguments)


@pytest.mark.cupy
def test_cupy_matches_numpy(rng):
    import cupy
    logits = rng.normal(size=(3, 8, 5))
    targets, input_lengths, target_lengths = np.array([[1, 1, 2], [3, 4, 0], [2, 0, 0]]), [8, 6, 3], [3, 2, 1]
    expected = minidl_ctc(logits, targets, input_lengths, target_lengths, 0, "mean", False)
    loss, grad = minidl_ctc(cupy.asarray(logits), targets, input_lengths, target_lengths, 0, "mean", False)
    np.testing.assert_allclose(loss, expected[0], rtol=1e-10)
    np.testing.assert_allclose(cupy.asnumpy(grad), expected[1], rtol=1e-10, atol=1e-14)
