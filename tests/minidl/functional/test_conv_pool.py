"""conv2d_max_pool: the convolution and the max pooling after it as one op — gradients, and equal
to the two ops in turn (values, gradients, ties), for the shapes the fusion takes."""
import numpy as np
import pytest

import minidl as dl
from minidl.functional.conv import conv2d
from minidl.functional.conv_pool import conv2d_max_pool, pooled_patches, running_max, took_buffer, winners_share
from minidl.functional.pooling import max_pool2d
from minidl.tensor import Tensor

# x shape, kernel shape, strides, padding, dilation, relu, pool size
CASES = [
    ((2, 6, 7, 2), (3, 3, 2, 3), 1, "valid", 1, True, 2),        # 4x5 -> 2x2: a column left over
    ((2, 5, 5, 1), (3, 3, 1, 2), 1, "same", 1, False, 2),        # one channel, odd: a row and a column left
    ((1, 7, 9, 2), (2, 3, 2, 2), (2, 1), "same", 1, True, (2, 3)),
    ((2, 8, 8, 2), (3, 3, 2, 2), 1, "valid", 2, True, 2),        # dilated
    ((2, 4, 4, 3), (1, 1, 3, 2), 1, "valid", 1, True, 1),        # a pool of one: the convolution itself
    ((1, 9, 6, 1), (3, 2, 1, 2), 1, "valid", 1, False, 3),
]


def case_id(case):
    x, k, s, p, d, relu, pool = case
    return f"x{'x'.join(map(str, x))}-k{k[0]}x{k[1]}-s{s}-{p}-d{d}-{'relu' if relu else 'linear'}-pool{pool}"


def two_ops(x, W, b, strides, padding, dilation, relu, pool):
    return max_pool2d(conv2d(x, W, b, strides, padding, dilation, relu=relu), pool)


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_conv2d_max_pool_gradient(rng, case):
    x_shape, kernel_shape, strides, padding, dilation, relu, pool = case
    x, W, b = rng.normal(size=x_shape), rng.normal(size=kernel_shape), rng.normal(size=kernel_shape[-1])
    dl.gradcheck(lambda x, W, b: conv2d_max_pool(x, W, b, strides, padding, dilation, relu, pool), (x, W, b))


def test_conv2d_max_pool_gradient_without_bias(rng):
    x, W = rng.normal(size=(2, 5, 6, 2)), rng.normal(size=(2, 2, 2, 3))
    dl.gradcheck(lambda x, W: conv2d_max_pool(x, W, padding="same", relu=True), (x, W))


def values_and_gradients(op, x, W, b, upstream):
    tensors = [Tensor(a.copy(), requires_grad=True) for a in (x, W, b)]
    y = op(*tensors)
    y.backward(upstream)
    return [y.data] + [t.grad for t in tensors]


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_conv2d_max_pool_equals_the_two_ops(rng, case):
    x_shape, kernel_shape, strides, padding, dilation, relu, pool = case
    x, W, b = rng.normal(size=x_shape), rng.normal(size=kernel_shape), rng.normal(size=kernel_shape[-1])
    fused = lambda x, W, b: conv2d_max_pool(x, W, b, strides, padding, dilation, relu, pool)
    plain = lambda x, W, b: two_ops(x, W, b, strides, padding, dilation, relu, pool)
    shape = plain(Tensor(x), Tensor(W), Tensor(b)).shape
    upstream = rng.normal(size=shape)
    for got, expected in zip(values_and_gradients(fused, x, W, b, upstream),
                             values_and_gradients(plain, x, W, b, upstream)):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bias", [0.0, -100.0], ids=["tied-maxima", "all-below-zero"])
def test_ties_and_a_dead_relu_get_the_gradients_of_the_two_ops(rng, bias):
    # a constant image: every window of the conv output holds one value four times (ties, the first
    # wins); with a large negative bias every ReLU output is 0, ties again and no gradient at all
    x = np.ones((2, 6, 6, 2))
    W = rng.normal(size=(3, 3, 2, 3))
    b = np.full(3, bias)
    upstream = rng.normal(size=(2, 2, 2, 3))
    fused = values_and_gradients(lambda x, W, b: conv2d_max_pool(x, W, b, relu=True), x, W, b, upstream)
    plain = values_and_gradients(lambda x, W, b: two_ops(x, W, b, 1, "valid", 1, True, 2), x, W, b, upstream)
    for got, expected in zip(fused, plain):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    if bias < 0:
        assert not fused[2].any() and not fused[0].any()


def test_pooled_patches_groups_rows_by_pool_offset():
    x = np.arange(1 * 6 * 7 * 2, dtype=np.float64).reshape(1, 6, 7, 2)
    view = pooled_patches(x, (2, 2), (1, 1), (1, 1), (2, 2), (2, 3))
    assert view.shape == (2, 2, 1, 2, 3, 2, 2, 2)
    # entry (u, v) = (1, 0) of window (p, q) = (1, 2) is the patch under conv output (3, 4)
    np.testing.assert_array_equal(view[1, 0, 0, 1, 2], x[0, 3:5, 4:6])


def test_only_the_gradients_asked_for_and_none_after_inference(rng):
    x = Tensor(rng.normal(size=(2, 6, 6, 2)).astype("float32"))
    W = Tensor(rng.normal(size=(3, 3, 2, 4)).astype("float32"), requires_grad=True)
    y = conv2d_max_pool(x, W, relu=True)
    y.backward(np.ones(y.shape, dtype="float32"))
    assert W.grad.dtype == np.float32 and W.grad.shape == W.shape and x.grad is None
    with dl.no_grad():
        z = conv2d_max_pool(x, W, relu=True)
    np.testing.assert_array_equal(z.data, y.data)


def test_a_pool_bigger_than_the_convolution_output_is_an_error(rng):
    x, W = rng.normal(size=(1, 4, 4, 1)), rng.normal(size=(3, 3, 1, 2))
    with pytest.raises(ValueError, match=r"pool \(3, 3\) does not fit the convolution's output of 2x2"):
        conv2d_max_pool(x, W, pool_size=3)
    with pytest.raises(ValueError, match="conv2d_max_pool: pool_size must be positive"):
        conv2d_max_pool(x, W, pool_size=0)


def test_bad_operands_are_refused_by_name(rng):
    x, W = rng.normal(size=(1, 6, 6, 2)), rng.normal(size=(3, 3, 2, 4))
    with pytest.raises(ValueError, match=r"conv2d_max_pool: expected x \(batch, height, width, channels\)"):
        conv2d_max_pool(x[0], W)
    with pytest.raises(ValueError, match=r"conv2d_max_pool: the kernel \(3, 3, 3, 4\) expects 3 input channels"):
        conv2d_max_pool(x, rng.normal(size=(3, 3, 3, 4)))
    with pytest.raises(ValueError, match="conv2d_max_pool: padding must be 'valid' or 'same', got 'causal'"):
        conv2d_max_pool(x, W, padding="causal")


@pytest.mark.cupy
def test_conv2d_max_pool_on_cupy_matches_numpy(rng):
    import cupy
    x, W, b = (rng.normal(size=s).astype("float32") for s in [(2, 9, 7, 3), (3, 3, 3, 4), (4,)])
    tensors = [Tensor(cupy.asarray(a), requires_grad=True) for a in (x, W, b)]
    y = conv2d_max_pool(*tensors, padding="same", relu=True)
    y.backward(cupy.ones(y.shape, dtype="float32"))
    reference = [Tensor(a, requires_grad=True) for a in (x, W, b)]
    y_ref = conv2d_max_pool(*reference, padding="same", relu=True)
    y_ref.backward(np.ones(y_ref.shape, dtype="float32"))
    np.testing.assert_allclose(y.numpy(), y_ref.numpy(), atol=1e-5, rtol=1e-5)
    for t, r in zip(tensors, reference):
        np.testing.assert_allclose(cupy.asnumpy(t.grad), r.grad, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("offsets", [1, 2, 4, 9])
def test_running_max_and_winners_share_give_each_gradient_to_the_first_maximum(rng, offsets):
    # small integers: many ties, within and across offsets; np.argmax picks the first maximum
    entries = rng.integers(-2, 3, size=(offsets, 5, 7)).astype(np.float64)
    g = rng.normal(size=(5, 7))
    took = took_buffer(np, entries[0], offsets)
    y = running_max(list(entries), took)
    np.testing.assert_array_equal(y, entries.max(axis=0))
    shares, rest = np.empty_like(entries), np.empty_like(g)
    winners_share(g, took, shares, rest)
    expected = np.where(np.arange(offsets)[:, None, None] == entries.argmax(axis=0), g, 0.0)
    np.testing.assert_array_equal(shares, expected)
    assert np.count_nonzero(shares, axis=0).max() <= 1   # one winner per position
