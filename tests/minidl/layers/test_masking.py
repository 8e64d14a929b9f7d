"""Masking: the mask it computes, the zeros it writes, gradients, and Keras' outputs."""
import numpy as np
import pytest

from minidl.layers.masking import Masking
from minidl.tensor import Tensor


def padded(seed=0):
    x = np.random.default_rng(seed).normal(size=(3, 5, 2)).astype(np.float32)
    x[1, 3:] = 0.0
    x[2, 1:] = 0.0
    x[0, 2, 0] = 0.0  # one zero feature does not mask a step
    return x


def test_mask_marks_steps_whose_features_all_equal_mask_value():
    out = Masking()(Tensor(padded()))
    expected = np.ones((3, 5), bool)
    expected[1, 3:] = False
    expected[2, 1:] = False
    np.testing.assert_array_equal(out.mask, expected)
    np.testing.assert_array_equal(out.data, padded())


def test_other_mask_value_zeroes_masked_steps():
    x = np.full((2, 3, 2), -1.0, np.float32)
    x[0, 0] = [1.0, 2.0]
    out = Masking(mask_value=-1.0)(Tensor(x))
    np.testing.assert_array_equal(out.mask, [[True, False, False], [False, False, False]])
    np.testing.assert_array_equal(out.data[~out.mask], 0.0)
    assert out.dtype == np.float32


def test_gradient_passes_at_kept_steps_only():
    # (a finite-difference check cannot run here: nudging a padded zero would unmask its step)
    x = Tensor(padded(), requires_grad=True)
    out = Masking()(x)
    g = np.random.default_rng(1).normal(size=x.shape).astype(np.float32)
    out.backward(g)
    np.testing.assert_array_equal(x.grad, g * out.mask[..., None])


def test_config_and_bad_input():
    layer = Masking(mask_value=0.5, name="pad")
    assert Masking(**layer.get_config()).get_config() == layer.get_config() == \
        {"name": "pad", "trainable": True, "mask_value": 0.5}
    with pytest.raises(ValueError, match=r"Masking 'pad' expects an input of shape \(batch, steps, \.\.\.\)"):
        layer(Tensor(np.zeros(3, np.float32)))


def test_matches_live_keras():
    keras = pytest.importorskip("keras")
    x = padded()
    x[0, 4] = -2.0
    reference = keras.layers.Masking(mask_value=-2.0)
    expected = keras.ops.convert_to_numpy(reference(x))
    expected_mask = keras.ops.convert_to_numpy(reference.compute_mask(x))
    out = Masking(mask_value=-2.0)(Tensor(x))
    np.testing.assert_array_equal(out.data, expected)
    np.testing.assert_array_equal(out.mask, expected_mask)
