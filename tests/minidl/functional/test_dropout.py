"""Dropout (minidl/functional/dropout.py): inverted dropout, identity at inference, mask in backward,
and a float64 gradient check with the mask held fixed."""
import numpy as np
import pytest

import minidl as dl
import minidl.functional as F
from minidl.functional.dropout import Dropout
from minidl.gradcheck import GradcheckError, gradcheck


def test_dropout_scales_kept_values_and_is_identity_at_inference():
    x = dl.Tensor(np.ones((200, 50)))
    y = F.dropout(x, 0.4, training=True).data
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.6)
    assert abs(kept.mean() - 0.6) < 0.02
    assert F.dropout(x, 0.4, training=False) is x


def test_dropout_gradient_follows_its_mask():
    x = dl.Tensor(np.ones((4, 5)), requires_grad=True)
    y = F.dropout(x, 0.5, training=True)
    F.sum(y).backward()
    np.testing.assert_allclose(x.grad, y.data)


def with_a_fixed_mask(rate, noise_shape=None, seed=3):
    """F.dropout in training, reseeding minidl's generator first, so every evaluation gradcheck
    makes draws the same mask: the real op, with its mask held fixed."""
    def fn(x):
        dl.random.seed(seed)
        return F.dropout(x, rate, training=True, noise_shape=noise_shape)
    return fn


DROPOUT_CASES = [pytest.param((1,), 0.5, None, id="one"),
                 pytest.param((3, 4), 0.5, None, id="3x4"),
                 pytest.param((4, 5), 0.2, None, id="4x5-rate-0.2"),
                 pytest.param((2, 5, 3), 0.5, (2, 1, 3), id="2x5x3-noise-shape-2x1x3")]


@pytest.mark.parametrize("shape, rate, noise_shape", DROPOUT_CASES)
def test_dropout_gradient(rng, shape, rate, noise_shape):
    x = rng.normal(size=shape)
    fn = with_a_fixed_mask(rate, noise_shape)
    np.testing.assert_array_equal(fn(dl.Tensor(x)).data, fn(dl.Tensor(x)).data)  # the mask is fixed
    gradcheck(fn, (x,))


def test_dropout_gradient_with_a_mask_that_drops_and_keeps(rng):
    x = rng.normal(size=(6, 7))
    fn = with_a_fixed_mask(0.5)
    kept = fn(dl.Tensor(x)).data != 0
    assert 0 < kept.mean() < 1  # both branches of the mask are checked
    gradcheck(fn, (x,))


def test_gradcheck_catches_a_halved_dropout_gradient(rng, monkeypatch):
    backward = Dropout.backward
    monkeypatch.setattr(Dropout, "backward", lambda self, gy: 0.5 * backward(self, gy))
    with pytest.raises(GradcheckError, match="analytic"):
        gradcheck(with_a_fixed_mask(0.5), (rng.normal(size=(6, 7)),))
