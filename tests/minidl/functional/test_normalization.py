"""batch_normalization (training and fixed statistics), layer_normalization: gradients, values."""
import numpy as np
import pytest

import minidl as dl
from minidl.functional.normalization import batch_normalization, batch_normalization_train, layer_normalization


def case_ids(op: str, cases) -> list[str]:
    """Test ids for (shape, axis) cases that name the op: batch_normalization_train-4x3-axis-1."""
    def text(value):
        return "x".join(map(str, value)) if isinstance(value, tuple) else str(value)
    return [f"{op}-{text(shape)}-axis{text(axis)}" for shape, axis in cases]


TRAIN_CASES = [((4, 3), -1), ((2, 3, 4, 2), -1), ((3, 2, 4), 1), ((1, 5, 2), -1), ((6, 1), 1)]
FIXED_CASES = [((4, 3), -1), ((2, 3, 4), 1)]
LAYER_NORM_CASES = [((3, 5), -1), ((2, 3, 4), -1), ((2, 3, 4), (1, 2)), ((2, 1), -1), ((2, 4, 3), 1)]


@pytest.mark.parametrize("shape, axis", TRAIN_CASES, ids=case_ids("batch_normalization_train", TRAIN_CASES))
def test_batch_normalization_train_gradient(rng, shape, axis):
    features = shape[axis]
    gamma, beta = rng.normal(size=features), rng.normal(size=features)
    dl.gradcheck(lambda x, g, b: batch_normalization_train(x, g, b, axis, epsilon=1e-3)[0],
                 (rng.normal(size=shape), gamma, beta))


def test_batch_normalization_train_without_scale_and_center(rng):
    dl.gradcheck(lambda x: batch_normalization_train(x, axis=-1)[0], (rng.normal(size=(5, 3)),))


def test_batch_normalization_train_values_and_statistics(rng):
    x = rng.normal(size=(2, 3, 4, 5)) * 3 + 1
    y, mean, variance = batch_normalization_train(x, np.full(5, 2.0), np.full(5, 0.5), epsilon=1e-3)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 1, 2)))
    np.testing.assert_allclose(variance, x.var(axis=(0, 1, 2)))
    np.testing.assert_allclose(y.numpy(), 2 * (x - mean) / np.sqrt(variance + 1e-3) + 0.5)


@pytest.mark.parametrize("shape, axis", FIXED_CASES, ids=case_ids("batch_normalization", FIXED_CASES))
def test_batch_normalization_fixed_gradient(rng, shape, axis):
    features = shape[axis]
    mean, variance = rng.normal(size=features), rng.uniform(0.5, 2, size=features)
    dl.gradcheck(lambda x, g, b: batch_normalization(x, mean, variance, g, b, axis),
                 (rng.normal(size=shape), rng.normal(size=features), rng.normal(size=features)))


@pytest.mark.parametrize("shape, axis", LAYER_NORM_CASES, ids=case_ids("layer_normalization", LAYER_NORM_CASES))
def test_layer_normalization_gradient(rng, shape, axis):
    axes = (axis,) if isinstance(axis, int) else axis
    param_shape = tuple(shape[a] for a in axes)
    dl.gradcheck(lambda x, g, b: layer_normalization(x, g, b, axis),
                 (rng.normal(size=shape), rng.normal(size=param_shape), rng.normal(size=param_shape)))


def test_layer_normalization_values(rng):
    x = rng.normal(size=(2, 3, 4))
    y = layer_normalization(x, epsilon=1e-5).numpy()
    expected = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, expected, atol=1e-12)


def test_normalization_keeps_float32(rng):
    x = rng.normal(size=(4, 3)).astype("float32")
    assert batch_normalization_train(x)[0].dtype == np.float32
    assert layer_normalization(x).dtype == np.float32


def test_axis_errors():
    with pytest.raises(ValueError, match=r"layer_normalization: axis 3 is out of range for a 2-D input"):
        layer_normalization(np.zeros((2, 3)), axis=3)
