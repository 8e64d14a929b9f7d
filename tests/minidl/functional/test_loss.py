"""Cross-entropy on probabilities (minidl/functional/loss.py): Keras 3's rescale-then-clip formula
in the value and the gradient, a finite gradient when a probability is exactly 0, float64 gradient
checks that a halved gradient fails, and live Keras (torch backend) values and gradients.

The values, gradients and errors of every loss against their formulas are in
tests/minidl/test_losses.py; this file holds what the probability path needs beyond that.
"""
import numpy as np
import pytest

import minidl as dl
import minidl.functional as F
from minidl.functional.loss import SparseCrossentropy
from minidl.gradcheck import GradcheckError, gradcheck

EPSILON = 1e-7  # keras.config.epsilon(): Keras clips probabilities to [ε, 1 - ε] before the log


def keras_sparse_crossentropy_and_gradient(p, labels):
    """Keras 3's formula, q = clip(p / Σp, ε, 1 - ε), loss = -log q[label], and its gradient with
    respect to p, written out in NumPy (keras/src/backend/numpy/nn.py)."""
    total = p.sum(-1, keepdims=True)
    q = p / total
    picked = np.take_along_axis(q, labels[..., None], -1)[..., 0]
    loss = -np.log(np.clip(picked, EPSILON, 1 - EPSILON))
    inside = (picked >= EPSILON) & (picked <= 1 - EPSILON)
    g = np.where(inside, -1 / np.where(inside, picked, 1), 0.0)        # ∂loss/∂q[label]
    onehot = np.eye(p.shape[-1])[labels]
    return loss, (g / total[..., 0])[..., None] * (onehot - picked[..., None])


ZERO_AND_UNNORMALISED = np.array([[0.0, 1.0, 0.0],     # the labelled probability is exactly 0
                                  [0.2, 0.3, 0.5],     # an ordinary row
                                  [0.1, 0.1, 0.1],     # sums to 0.3: Keras divides by the sum
                                  [0.0, 0.0, 1.0]])    # the labelled probability is exactly 1
LABELS = np.array([0, 2, 1, 2])


# --- the zero-probability case (issue 14) -----------------------------------------------------------
def test_sparse_crossentropy_gradient_is_finite_and_keras_when_a_probability_is_exactly_0():
    p = dl.Tensor(ZERO_AND_UNNORMALISED.copy(), requires_grad=True)
    loss = F.sparse_categorical_crossentropy(LABELS, p)
    F.sum(loss).backward()
    expected_loss, expected_grad = keras_sparse_crossentropy_and_gradient(ZERO_AND_UNNORMALISED, LABELS)
    assert np.isfinite(p.grad).all()
    np.testing.assert_allclose(loss.data, expected_loss, rtol=1e-12)
    np.testing.assert_allclose(p.grad, expected_grad, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(p.grad[0], 0.0)  # clipped: no gradient, as in Keras, not 0/0


def test_an_underflowed_float32_softmax_gives_a_zero_logit_gradient_not_nan():
    # exp(-200) is 0 in float32: what unscaled uint8 inputs or a large step give a digit model
    z = dl.Tensor(np.array([[0.0, 200.0, 1.0], [0.5, -0.5, 0.0]], dtype=np.float32), requires_grad=True)
    p = F.softmax(z)
    assert p.data[0, 0] == 0.0
    loss = F.sparse_categorical_crossentropy(np.array([0, 1]), p)
    F.sum(loss).backward()
    assert z.grad.dtype == np.float32
    np.testing.assert_allclose(loss.data[0], -np.log(np.float32(EPSILON)), rtol=1e-6)
    np.testing.assert_array_equal(z.grad[0], 0.0)
    np.testing.assert_allclose(z.grad[1], p.data[1] - np.eye(3)[1], rtol=1e-5, atol=1e-6)


def test_sparse_crossentropy_rescales_probabilities_that_do_not_sum_to_1_as_keras():
    loss = F.sparse_categorical_crossentropy(np.array([1]), dl.Tensor(np.array([[0.1, 0.1, 0.1]]))).data
    np.testing.assert_allclose(loss, [np.log(3)], rtol=1e-12)


def test_categorical_crossentropy_gradient_is_finite_and_keras_when_a_probability_is_exactly_0():
    y_true = np.eye(3)[LABELS] * 0.9 + 0.1 / 3  # smoothed: the zero probabilities carry weight too
    p = dl.Tensor(ZERO_AND_UNNORMALISED.copy(), requires_grad=True)
    F.sum(F.categorical_crossentropy(y_true, p)).backward()
    total = ZERO_AND_UNNORMALISED.sum(-1, keepdims=True)
    q = ZERO_AND_UNNORMALISED / total
    inside = (q >= EPSILON) & (q <= 1 - EPSILON)
    gq = np.where(inside, -y_true / np.clip(q, EPSILON, 1), 0.0)   # ∂loss/∂q
    expected = (gq - (gq * q).sum(-1, keepdims=True)) / total      # through q = p / Σp
    np.testing.assert_allclose(p.grad, expected, rtol=1e-12, atol=1e-12)


def test_a_model_trains_on_through_an_underflowed_probability():
    dl.random.seed(0)
    model = dl.Sequential([dl.layers.Input((2,)), dl.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=dl.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    model.layers[-1].set_weights([np.array([[-1.0, 1.0, 0.0], [0.0, 0.0, 0.0]], dtype="float32"),
                                  np.zeros(3, dtype="float32")])
    x = np.array([[255.0, 0.0], [0.0, 1.0]], dtype="float32")  # unscaled: logits 510 apart
    model.fit(x, np.array([0, 1]), epochs=2, batch_size=2, verbose=0)
    assert all(np.isfinite(w).all() for w in model.get_weights())


# --- float64 gradient checks of the real ops ----------------------------------------------------------
SPARSE_CASES = [
    pytest.param((1, 3), np.array([2]), id="batch-1"),
    pytest.param((4, 5), np.array([0, 4, 2, 2]), id="4x5"),
    pytest.param((2, 3, 4), np.array([[0, 3, 1], [2, 2, 0]]), id="per-step-2x3x4"),
    pytest.param((3, 2), np.array([1, 0, 1]), id="two-classes"),
]


def scores(rng, shape):
    return rng.uniform(0.2, 2.0, size=shape)  # positive, away from the clip, not summing to 1


@pytest.mark.parametrize("shape, labels", SPARSE_CASES)
def test_sparse_crossentropy_on_probabilities_gradient(rng, shape, labels):
    gradcheck(lambda p: F.sparse_categorical_crossentropy(labels, p), (scores(rng, shape),))
    softmaxed = np.exp(rng.normal(size=shape))
    gradcheck(lambda p: F.sparse_categorical_crossentropy(labels, p), (softmaxed / softmaxed.sum(-1, keepdims=True),))


@pytest.mark.parametrize("shape, labels", SPARSE_CASES)
def test_sparse_crossentropy_after_softmax_gradient(rng, shape, labels):
    # the digit models' head and loss: Dense(..., activation="softmax") then this cross-entropy
    gradcheck(lambda z: F.sparse_categorical_crossentropy(labels, F.softmax(z)), (rng.normal(size=shape) * 2,))


@pytest.mark.parametrize("shape, labels", SPARSE_CASES)
def test_categorical_crossentropy_on_probabilities_gradient(rng, shape, labels):
    y_true = np.eye(shape[-1])[labels] * 0.8 + 0.2 / shape[-1]
    gradcheck(lambda p: F.categorical_crossentropy(y_true, p), (scores(rng, shape),))


@pytest.mark.parametrize("normalised", [True, False], ids=["summing-to-1", "scores"])
def test_gradcheck_catches_a_halved_sparse_crossentropy_gradient(rng, monkeypatch, normalised):
    p = scores(rng, (2, 3))
    p = p / p.sum(-1, keepdims=True) if normalised else p
    backward = SparseCrossentropy.backward
    monkeypatch.setattr(SparseCrossentropy, "backward", lambda self, gy: 0.5 * backward(self, gy))
    with pytest.raises(GradcheckError, match="analytic"):
        gradcheck(lambda p: F.sparse_categorical_crossentropy(np.array([0, 2]), p), (p,))


# --- Keras itself, when installed -------------------------------------------------------------------
def test_crossentropy_values_and_gradients_match_live_keras(rng):
    keras = pytest.importorskip("keras")
    torch = pytest.importorskip("torch")
    y_true = np.eye(3)[LABELS] * 0.9 + 0.1 / 3
    for name, target in [("sparse_categorical_crossentropy", LABELS), ("categorical_crossentropy", y_true)]:
        theirs_p = torch.tensor(ZERO_AND_UNNORMALISED, requires_grad=True)
        theirs = getattr(keras.losses, name)(torch.tensor(target), theirs_p)
        theirs.sum().backward()
        ours_p = dl.Tensor(ZERO_AND_UNNORMALISED.copy(), requires_grad=True)
        ours = getattr(F, name)(target, ours_p)
        F.sum(ours).backward()
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(ours_p.grad, theirs_p.grad.numpy(), rtol=1e-12, atol=1e-12, err_msg=name)
    # float32 logits through softmax, one row underflowing to an exact 0
    logits = np.concatenate([[[0.0, 200.0, 1.0]], rng.normal(size=(3, 3))]).astype("float32")
    theirs_z = torch.tensor(logits, requires_grad=True)
    keras.losses.sparse_categorical_crossentropy(torch.tensor(LABELS), keras.ops.softmax(theirs_z)).sum().backward()
    ours_z = dl.Tensor(logits.copy(), requires_grad=True)
    F.sum(F.sparse_categorical_crossentropy(LABELS, F.softmax(ours_z))).backward()
    np.testing.assert_allclose(ours_z.grad, theirs_z.grad.numpy(), rtol=1e-5, atol=1e-6)
