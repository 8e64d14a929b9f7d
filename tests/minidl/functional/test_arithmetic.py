"""Arithmetic ops (minidl/functional/arithmetic.py): values against NumPy, float64 gradient checks
over broadcast shapes, and the errors they raise."""
import numpy as np
import pytest

import minidl as dl
import minidl.functional as F
from minidl.functional.arithmetic import Cast
from minidl.gradcheck import GradcheckError, gradcheck

BINARY_SHAPES = [pytest.param((3, 4), (3, 4), id="same-shape"),
                 pytest.param((2, 3, 4), (3, 1), id="broadcast-3d-by-column"),
                 pytest.param((1,), (5,), id="broadcast-one"),
                 pytest.param((), (2, 2), id="scalar-by-matrix"),
                 pytest.param((4, 1), (1, 4), id="outer")]
BINARY = [pytest.param(F.add, np.add, id="add"), pytest.param(F.sub, np.subtract, id="sub"),
          pytest.param(F.mul, np.multiply, id="mul"), pytest.param(F.div, np.divide, id="div")]


@pytest.mark.parametrize("a_shape, b_shape", BINARY_SHAPES)
@pytest.mark.parametrize("op, reference", BINARY)
def test_binary_op_broadcasts_like_numpy_and_sums_its_gradient_back(rng, op, reference, a_shape, b_shape):
    a, b = rng.normal(size=a_shape), rng.uniform(0.5, 2.0, size=b_shape)  # b > 0: div stays smooth
    np.testing.assert_allclose(op(dl.Tensor(a), dl.Tensor(b)).data, reference(a, b))
    dl.gradcheck(op, (a, b))


@pytest.mark.parametrize("a_shape, b_shape", [
    pytest.param((3, 4), (4, 2), id="matmul-matrix"),
    pytest.param((2, 3, 4), (4, 5), id="matmul-batch-by-matrix"),
    pytest.param((4,), (4, 3), id="matmul-vector-by-matrix"),
    pytest.param((3, 4), (4,), id="matmul-matrix-by-vector"),
    pytest.param((2, 1, 3, 4), (5, 4, 2), id="matmul-broadcast-batches"),
    pytest.param((1, 1), (1, 1), id="matmul-1x1")])
def test_matmul_matches_numpy_and_its_gradient(rng, a_shape, b_shape):
    a, b = rng.normal(size=a_shape), rng.normal(size=b_shape)
    np.testing.assert_allclose(F.matmul(dl.Tensor(a), dl.Tensor(b)).data, np.matmul(a, b))
    dl.gradcheck(F.matmul, (a, b))


def normal(rng, shape):
    return rng.normal(size=shape)


def positive(rng, shape):
    return rng.uniform(0.5, 2.0, size=shape)


UNARY = [  # the op, its NumPy formula, and where its inputs come from (log, sqrt want x > 0)
    pytest.param(F.exp, np.exp, normal, id="exp"),
    pytest.param(F.log, np.log, positive, id="log"),
    pytest.param(F.sqrt, np.sqrt, positive, id="sqrt"),
    pytest.param(F.abs, np.abs, normal, id="abs"),
    pytest.param(F.neg, np.negative, normal, id="neg"),
    pytest.param(lambda x: F.pow(x, 3), lambda x: x ** 3, normal, id="pow-3"),
    pytest.param(lambda x: F.pow(x, -0.5), lambda x: 1 / np.sqrt(x), positive, id="pow-minus-half"),
    pytest.param(lambda x: F.clip(x, -0.5, 0.5), lambda x: np.minimum(np.maximum(x, -0.5), 0.5), normal, id="clip"),
]


@pytest.mark.parametrize("shape", [(1,), (3, 4), (2, 1, 5), ()], ids=["one", "3x4", "2x1x5", "scalar"])
@pytest.mark.parametrize("op, reference, make", UNARY)
def test_unary_op_value_and_gradient(rng, op, reference, make, shape):
    x = make(rng, shape)
    np.testing.assert_allclose(op(dl.Tensor(x)).data, reference(x))
    dl.gradcheck(op, (x,))


def test_where_takes_a_where_the_condition_holds_and_b_elsewhere(rng):
    condition = np.array([[True, False, True], [False, False, True]])
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(1, 3))
    np.testing.assert_array_equal(F.where(condition, dl.Tensor(a), dl.Tensor(b)).data, np.where(condition, a, b))
    dl.gradcheck(lambda a, b: F.where(condition, a, b), (a, b))


def test_cast_keeps_the_gradient_dtype():
    x = dl.Tensor(np.ones(3), requires_grad=True)
    y = F.cast(x, "float32")
    assert y.dtype == np.float32
    F.sum(y).backward()
    assert x.grad.dtype == np.float64


CAST_SHAPES = [pytest.param((1,), id="one"), pytest.param((3, 4), id="3x4"), pytest.param((2, 1, 5), id="2x1x5"),
               pytest.param((), id="scalar")]


def on_a_float32_grid(rng, shape):
    """float64 values that float32 holds exactly, as does each ± CAST_EPS nudge of them."""
    return np.asarray(rng.integers(-64, 64, size=shape) / 8.0)  # an array even for shape ()


CAST_EPS = 2.0 ** -10  # a power of two: x ± eps stays exact in float32, so the differences are exact


@pytest.mark.parametrize("shape", CAST_SHAPES)
def test_cast_gradient(rng, shape):
    x = on_a_float32_grid(rng, shape)
    gradcheck(lambda x: F.cast(F.cast(x, "float32"), "float64"), (x,), eps=CAST_EPS)  # down and back up
    gradcheck(lambda x: F.mul(F.cast(x, "float64"), x), (x,))                         # a same-dtype cast


def test_gradcheck_catches_a_halved_cast_gradient(rng, monkeypatch):
    backward = Cast.backward
    monkeypatch.setattr(Cast, "backward", lambda self, gy: 0.5 * backward(self, gy))
    with pytest.raises(GradcheckError, match="analytic"):
        gradcheck(lambda x: F.cast(F.cast(x, "float32"), "float64"), (on_a_float32_grid(rng, (3,)),), eps=CAST_EPS)


def test_matmul_shape_mismatch_is_explained():
    with pytest.raises(ValueError, match=r"inner sizes differ, shapes \(2, 3\) @ \(4, 5\)"):
        F.matmul(dl.Tensor(np.ones((2, 3))), dl.Tensor(np.ones((4, 5))))
