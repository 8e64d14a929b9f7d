import numpy as np
import pytest

import minidl as dl
from minidl import initializers


def test_glorot_uniform_limit_and_spread():
    w = initializers.glorot_uniform((200, 300))
    limit = np.sqrt(6 / 500)
    assert np.abs(w).max() <= limit
    assert abs(w.std() - limit / np.sqrt(3)) < 0.01 * limit


def test_fans_of_a_conv_kernel_include_the_receptive_field():
    w = initializers.he_normal((3, 3, 16, 32))          # fan_in = 3*3*16 = 144
    assert abs(w.std() - np.sqrt(2 / 144)) < 0.1 * np.sqrt(2 / 144)
    assert np.abs(w).max() <= 2 * np.sqrt(2 / 144) / 0.87962566103423978 + 1e-12


@pytest.mark.parametrize("shape", [(4, 4), (6, 3), (3, 6)])
def test_orthogonal_has_orthonormal_rows_or_columns(shape):
    w = initializers.orthogonal(shape)
    small = min(shape)
    gram = w.T @ w if shape[0] >= shape[1] else w @ w.T
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-10)


def test_same_seed_same_weights():
    dl.random.seed(7)
    a = initializers.glorot_uniform((3, 3))
    dl.random.seed(7)
    np.testing.assert_array_equal(a, initializers.glorot_uniform((3, 3)))


def test_unknown_name():
    with pytest.raises(ValueError, match="unknown initializer 'magic'; known: .*glorot_uniform"):
        initializers.get("magic")
