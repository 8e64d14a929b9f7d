"""Affine (minidl/functional/affine.py): y = x·W + b over any leading axes, value and gradient."""
import numpy as np
import pytest

import minidl as dl
import minidl.functional as F


@pytest.mark.parametrize("x_shape, units, bias", [pytest.param((2, 3, 4), 5, True, id="affine-leading-axes"),
                                                  pytest.param((1, 4), 2, False, id="affine-no-bias-batch-1")])
def test_affine_value_and_gradient(rng, x_shape, units, bias):
    x, W = rng.normal(size=x_shape), rng.normal(size=(x_shape[-1], units))
    b = rng.normal(size=units) if bias else None
    expected = x @ W + (b if bias else 0)
    inputs = (x, W, b) if bias else (x, W)
    np.testing.assert_allclose(F.affine(*(dl.Tensor(a) for a in inputs)).data, expected, rtol=1e-12)
    dl.gradcheck(F.affine, inputs)
