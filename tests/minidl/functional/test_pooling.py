"""max/avg pooling 1-D and 2-D, global pooling: values, Keras fixtures, gradients, ties, errors."""
import numpy as np
import pytest

import minidl as dl
from minidl.functional.pooling import (avg_pool1d, avg_pool2d, global_average_pool, global_max_pool,
                                       max_pool1d, max_pool2d)
from minidl.functional.conv import axis_padding
from minidl.tensor import Tensor
from tests.reference.make_conv_fixtures import CASES, load

FUNCTIONS = {"MaxPooling2D": max_pool2d, "AveragePooling2D": avg_pool2d,
             "MaxPooling1D": max_pool1d, "AveragePooling1D": avg_pool1d}


@pytest.mark.parametrize("case", [c for c, v in CASES["conv_pooling"].items() if v[0] in FUNCTIONS])
def test_pooling_matches_keras_fixture(case):
    class_name, kwargs, _, _ = CASES["conv_pooling"][case]
    data = load("conv_pooling")[case]
    y = FUNCTIONS[class_name](data["x"], **kwargs)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), data["y"], atol=1e-6, rtol=1e-6)


def test_same_average_pooling_leaves_padding_out_of_the_count():
    x = np.arange(1, 5, dtype=np.float64).reshape(1, 4, 1)
    # windows (1, 2), (3, 4) then padded: pool 2 stride 1 over [1 2 3 4 | pad]
    np.testing.assert_allclose(avg_pool1d(x, 2, 1, "same").numpy()[0, :, 0], [1.5, 2.5, 3.5, 4.0])
    np.testing.assert_allclose(max_pool1d(-x, 2, 1, "same").numpy()[0, :, 0], [-1, -2, -3, -4])


def test_max_pool_gradient_is_zero_where_no_window_reaches(rng):
    # 2x2 windows on 5x7 leave the last row and column out; backward writes the windows' part of
    # ∂x and zeroes only that edge, so the edge must come out 0 even from recycled memory
    x = rng.normal(size=(2, 5, 7, 3))
    for _ in range(3):
        np.full(x.shape, np.nan)  # freed at once: its memory may come back as ∂x's buffer
        t = Tensor(x, requires_grad=True)
        max_pool2d(t, 2).backward(np.ones((2, 2, 3, 3)))
        assert np.all(t.grad[:, 4] == 0) and np.all(t.grad[:, :, 6] == 0)
        assert t.grad.sum() == 2 * 2 * 3 * 3   # one winner per window


def test_max_pool_ties_go_to_the_first_maximum():
    x = Tensor(np.ones((1, 2, 2, 1)), requires_grad=True)
    max_pool2d(x, 2).backward(np.full((1, 1, 1, 1), 5.0))
    np.testing.assert_array_equal(x.grad[0, :, :, 0], [[5, 0], [0, 0]])


@pytest.mark.parametrize("pool_size, strides, padding", [(2, None, "valid"), (3, 2, "same"), ((2, 3), 1, "valid")])
def test_max_pool_ties_go_to_the_first_maximum_in_row_major_order(pool_size, strides, padding):
    # small integers: many windows hold their maximum twice or more, at every pair of offsets
    x = np.random.default_rng(1).integers(0, 3, size=(2, 6, 7, 2)).astype(np.float64)
    t = Tensor(x, requires_grad=True)
    y = max_pool2d(t, pool_size, strides, padding)
    gy = np.arange(1, y.size + 1, dtype=np.float64).reshape(y.shape)
    y.backward(gy)
    # reference: one window at a time, np.argmax (first maximum, row-major) takes the gradient
    ph, pw = (pool_size, pool_size) if isinstance(pool_size, int) else pool_size
    sh, sw = (ph, pw) if strides is None else (strides, strides)
    (top, bottom), (left, right) = (axis_padding(n, k, s, 1, padding) for n, k, s in zip((6, 7), (ph, pw), (sh, sw)))
    padded = np.pad(x, [(0, 0), (top, bottom), (left, right), (0, 0)], constant_values=-np.inf)
    expected = np.zeros(padded.shape)
    for b, p, q, c in np.ndindex(y.shape):
        patch = padded[b, p * sh:p * sh + ph, q * sw:q * sw + pw, c]
        i, j = np.unravel_index(np.argmax(patch), patch.shape)
        expected[b, p * sh + i, q * sw + j, c] += gy[b, p, q, c]
    np.testing.assert_array_equal(y.numpy(), np.max(np.lib.stride_tricks.sliding_window_view(
        padded, (ph, pw), axis=(1, 2))[:, ::sh, ::sw], axis=(-2, -1)))
    np.testing.assert_array_equal(t.grad, expected[:, top:top + 6, left:left + 7])


def test_max_pool_overlapping_windows_add_up():
    x = Tensor(np.array([0, 9, 1, 2, 0], dtype=np.float64).reshape(1, 5, 1), requires_grad=True)
    y = max_pool1d(x, 3, 1)   # windows [0 9 1] [9 1 2] [1 2 0]: 9, 9, 2
    y.backward(np.ones(y.shape))
    np.testing.assert_array_equal(x.grad[0, :, 0], [0, 2, 0, 1, 0])


POOL2D_CASES = [((1, 4, 4, 2), 2, None, "valid"), ((2, 5, 5, 1), 3, 2, "same"), ((2, 5, 4, 2), 2, 2, "same"),
                ((1, 5, 6, 3), (2, 3), 1, "same"), ((2, 5, 5, 2), 3, 2, "valid"), ((2, 5, 7, 2), 2, None, "valid")]
POOL1D_CASES = [((1, 6, 2), 2, None, "valid"), ((2, 7, 2), 3, 2, "same"), ((2, 1, 3), 2, 1, "same"),
                ((2, 9, 1), 4, 3, "same")]


def pool_ids(cases) -> list[str]:
    """x2x5x5x1-pool3-strides2-same (no strides part when they default to the pool size); the
    op's name comes first, from the ids of "function"."""
    def text(value):
        return "x".join(map(str, value)) if isinstance(value, tuple) else str(value)
    return [f"x{text(shape)}-pool{text(pool)}{'' if strides is None else f'-strides{text(strides)}'}-{padding}"
            for shape, pool, strides, padding in cases]


def op_name(function) -> str:
    return function.__name__


@pytest.mark.parametrize("shape, pool_size, strides, padding", POOL2D_CASES, ids=pool_ids(POOL2D_CASES))
@pytest.mark.parametrize("function", [max_pool2d, avg_pool2d], ids=op_name)
def test_pool2d_gradient(rng, function, shape, pool_size, strides, padding):
    dl.gradcheck(lambda x: function(x, pool_size, strides, padding), (rng.normal(size=shape),))


@pytest.mark.parametrize("shape, pool_size, strides, padding", POOL1D_CASES, ids=pool_ids(POOL1D_CASES))
@pytest.mark.parametrize("function", [max_pool1d, avg_pool1d], ids=op_name)
def test_pool1d_gradient(rng, function, shape, pool_size, strides, padding):
    dl.gradcheck(lambda x: function(x, pool_size, strides, padding), (rng.normal(size=shape),))


@pytest.mark.parametrize("function", [global_average_pool, global_max_pool], ids=op_name)
def test_global_pool_gradient_and_mask(rng, function):
    x = rng.normal(size=(3, 5, 2))
    mask = np.arange(5)[None] < np.array([5, 2, 1])[:, None]
    dl.gradcheck(lambda x: function(x, 1, mask=mask), (x,))
    dl.gradcheck(lambda x: function(x, 2, keepdims=True), (rng.normal(size=(2, 3, 2, 2)),))
    reduce = np.mean if function is global_average_pool else np.max
    expected = np.stack([reduce(x[b, :n], axis=0) for b, n in enumerate([5, 2, 1])])
    np.testing.assert_allclose(function(x, 1, mask=mask).numpy(), expected)


def test_pooling_errors():
    with pytest.raises(ValueError, match=r"max_pool2d: expected x \(batch, height, width, channels\), "
                                         r"got shape \(4, 4, 1\)"):
        max_pool2d(np.zeros((4, 4, 1)))
    with pytest.raises(ValueError, match=r"avg_pool1d: the kernel spans 3 steps .* only 2"):
        avg_pool1d(np.zeros((1, 2, 1)), 3)
    with pytest.raises(ValueError, match=r"strides must be positive, got -1"):
        max_pool1d(np.zeros((1, 4, 1)), 2, -1)


@pytest.mark.cupy
def test_max_pool_on_cupy_matches_numpy(rng):
    import cupy
    x = rng.normal(size=(2, 7, 6, 3)).astype("float32")
    for function in (max_pool2d, avg_pool2d):
        a, b = Tensor(cupy.asarray(x), requires_grad=True), Tensor(x, requires_grad=True)
        ya, yb = function(a, 3, 2, "same"), function(b, 3, 2, "same")
        ya.backward(cupy.ones(ya.shape, dtype="float32"))
        yb.backward(np.ones(yb.shape, dtype="float32"))
        np.testing.assert_allclose(ya.numpy(), yb.numpy(), rtol=1e-6)
        np.testing.assert_allclose(cupy.asnumpy(a.grad), b.grad, rtol=1e-6)
