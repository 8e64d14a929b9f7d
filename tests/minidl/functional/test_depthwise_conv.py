"""depthwise_conv1d / depthwise_conv2d and the separable convolutions: values against a direct
sum and against Keras' ops live, float64 gradients, errors."""
import numpy as np
import pytest

import minidl as dl
from minidl.functional.conv import axis_padding
from minidl.functional.depthwise_conv import (depthwise_conv1d, depthwise_conv2d, separable_conv1d,
                                              separable_conv2d)
from minidl.tensor import Tensor


def direct_depthwise2d(x, W, strides, padding, dilation):
    """The depthwise sum written out with a loop per output position: the reference."""
    (sh, sw), (dh, dw) = strides, dilation
    kh, kw, channels, multiplier = W.shape
    pads = [axis_padding(n, k, s, d, padding) for n, k, s, d in zip(x.shape[1:3], (kh, kw), strides, dilation)]
    padded = np.pad(x, [(0, 0), pads[0], pads[1], (0, 0)])
    out_h = (padded.shape[1] - (kh - 1) * dh - 1) // sh + 1
    out_w = (padded.shape[2] - (kw - 1) * dw - 1) // sw + 1
    y = np.zeros((x.shape[0], out_h, out_w, channels, multiplier))
    for p in range(out_h):
        for q in range(out_w):
            patch = padded[:, p * sh:p * sh + (kh - 1) * dh + 1:dh, q * sw:q * sw + (kw - 1) * dw + 1:dw, :]
            y[:, p, q] = np.einsum("bijc,ijcm->bcm", patch, W)
    return y.reshape(x.shape[0], out_h, out_w, channels * multiplier)


CASES_2D = [  # x shape, kernel shape (kh, kw, C, M), strides, padding, dilation
    ((1, 5, 5, 2), (3, 3, 2, 1), (1, 1), "valid", (1, 1)),     # batch 1
    ((2, 5, 6, 3), (2, 3, 3, 2), (2, 1), "same", (1, 1)),      # even kernel, strides: extra padding at the end
    ((2, 6, 6, 2), (3, 2, 2, 3), (1, 1), "same", (2, 1)),      # dilation
    ((1, 7, 6, 1), (3, 3, 1, 2), (2, 3), "valid", (1, 2)),     # one channel, strides and dilation
    ((2, 1, 6, 4), (1, 3, 4, 1), (1, 2), "same", (1, 1)),      # height 1
]
IDS_2D = [f"x{'x'.join(map(str, x))}-k{'x'.join(map(str, k))}-s{s}-{p}-d{d}" for x, k, s, p, d in CASES_2D]


@pytest.mark.parametrize("x_shape, kernel_shape, strides, padding, dilation", CASES_2D, ids=IDS_2D)
def test_depthwise_conv2d_equals_the_direct_sum(rng, x_shape, kernel_shape, strides, padding, dilation):
    x, W, b = rng.normal(size=x_shape), rng.normal(size=kernel_shape), rng.normal(size=np.prod(kernel_shape[2:]))
    y = depthwise_conv2d(x, W, b, strides, padding, dilation).numpy()
    np.testing.assert_allclose(y, direct_depthwise2d(x, W, strides, padding, dilation) + b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("x_shape, kernel_shape, strides, padding, dilation", CASES_2D, ids=IDS_2D)
def test_depthwise_conv2d_gradient(rng, x_shape, kernel_shape, strides, padding, dilation):
    x, W, b = rng.normal(size=x_shape), rng.normal(size=kernel_shape), rng.normal(size=np.prod(kernel_shape[2:]))
    dl.gradcheck(lambda x, W, b: depthwise_conv2d(x, W, b, strides, padding, dilation), (x, W, b))


def test_depthwise_conv2d_gradient_without_bias(rng):
    dl.gradcheck(lambda x, W: depthwise_conv2d(x, W, strides=2, padding="same"),
                 (rng.normal(size=(2, 5, 4, 2)), rng.normal(size=(3, 3, 2, 2))))


CASES_1D = [  # x shape, kernel shape (k, C, M), stride, padding, dilation
    ((1, 6, 2), (3, 2, 1), 1, "valid", 1),
    ((2, 7, 3), (4, 3, 2), 2, "same", 1),
    ((2, 9, 2), (3, 2, 2), 1, "same", 2),
    ((3, 1, 2), (3, 2, 1), 1, "same", 1),   # length 1, 'same' with a bigger kernel
]
IDS_1D = [f"x{'x'.join(map(str, x))}-k{'x'.join(map(str, k))}-s{s}-{p}-d{d}" for x, k, s, p, d in CASES_1D]


@pytest.mark.parametrize("x_shape, kernel_shape, stride, padding, dilation", CASES_1D, ids=IDS_1D)
def test_depthwise_conv1d_is_the_2d_one_on_height_1_and_its_gradient(rng, x_shape, kernel_shape, stride, padding,
                                                                      dilation):
    x, W, b = rng.normal(size=x_shape), rng.normal(size=kernel_shape), rng.normal(size=np.prod(kernel_shape[1:]))
    expected = direct_depthwise2d(x[:, None], W[None], (1, stride), padding, (1, dilation))[:, 0] + b
    np.testing.assert_allclose(depthwise_conv1d(x, W, b, stride, padding, dilation).numpy(), expected,
                               rtol=1e-12, atol=1e-12)
    dl.gradcheck(lambda x, W, b: depthwise_conv1d(x, W, b, stride, padding, dilation), (x, W, b))


def test_separable_convolutions_are_depthwise_then_pointwise_and_their_gradients(rng):
    x, D, P, b = (rng.normal(size=(2, 5, 6, 3)), rng.normal(size=(3, 2, 3, 2)), rng.normal(size=(1, 1, 6, 4)),
                  rng.normal(size=4))
    y = separable_conv2d(x, D, P, b, (2, 1), "same", 1).numpy()
    np.testing.assert_allclose(y, direct_depthwise2d(x, D, (2, 1), "same", (1, 1)) @ P[0, 0] + b, rtol=1e-12)
    dl.gradcheck(lambda x, D, P, b: separable_conv2d(x, D, P, b, (2, 1), "same"), (x, D, P, b))
    x1, D1, P1 = rng.normal(size=(2, 7, 2)), rng.normal(size=(3, 2, 2)), rng.normal(size=(1, 4, 3))
    y1 = separable_conv1d(x1, D1, P1, None, 1, "valid", 2).numpy()
    np.testing.assert_allclose(y1, direct_depthwise2d(x1[:, None], D1[None], (1, 1), "valid", (1, 2))[:, 0] @ P1[0],
                               rtol=1e-12)
    dl.gradcheck(lambda x, D, P: separable_conv1d(x, D, P, None, 1, "valid", 2), (x1, D1, P1))


@pytest.mark.parametrize("x_shape, kernel_shape, strides, padding, dilation", CASES_2D, ids=IDS_2D)
def test_depthwise_conv2d_matches_keras_ops_live(rng, x_shape, kernel_shape, strides, padding, dilation):
    keras = pytest.importorskip("keras")
    x, W = rng.normal(size=x_shape).astype("float32"), rng.normal(size=kernel_shape).astype("float32")
    expected = keras.ops.convert_to_numpy(keras.ops.depthwise_conv(x, W, strides, padding, "channels_last", dilation))
    np.testing.assert_allclose(depthwise_conv2d(x, W, None, strides, padding, dilation).numpy(), expected,
                               rtol=1e-5, atol=1e-5)


def test_only_the_kernel_gets_a_gradient_when_only_it_needs_one(rng):
    x = Tensor(rng.normal(size=(2, 5, 5, 2)).astype("float32"))
    W = Tensor(rng.normal(size=(3, 3, 2, 2)).astype("float32"), requires_grad=True)
    y = depthwise_conv2d(x, W, padding="same")
    y.backward(np.ones(y.shape, dtype="float32"))
    assert W.grad.dtype == np.float32 and W.grad.shape == W.shape and x.grad is None


@pytest.mark.parametrize("call, message", [
    (lambda: depthwise_conv2d(np.zeros((1, 4, 4, 3)), np.zeros((2, 2, 2, 1))),
     r"depthwise_conv2d: the kernel \(2, 2, 2, 1\) expects 2 input channels, x \(1, 4, 4, 3\) has 3"),
    (lambda: depthwise_conv2d(np.zeros((1, 4, 4)), np.zeros((2, 2, 4, 1))), r"expected x \(batch, height, width"),
    (lambda: depthwise_conv2d(np.zeros((1, 4, 4, 2)), np.zeros((2, 2, 2, 1)), padding="causal"),
     r"padding must be 'valid' or 'same', got 'causal'"),
    (lambda: depthwise_conv2d(np.zeros((1, 4, 4, 2)), np.zeros((2, 2, 2, 3)), np.zeros(3)),
     r"bias must have shape \(6,\), got \(3,\)"),
    (lambda: depthwise_conv1d(np.zeros((1, 2, 2)), np.zeros((3, 2, 1))), r"kernel spans 3 steps"),
    (lambda: separable_conv1d(np.zeros((1, 5, 2)), np.zeros((3, 2, 2)), np.zeros((1, 2, 3))),
     r"pointwise_kernel must have shape \(1, 4, filters\), got \(1, 2, 3\)"),
])
def test_errors_name_what_was_expected_and_what_came(call, message):
    with pytest.raises(ValueError, match=message):
        call()
