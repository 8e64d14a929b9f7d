"""Transposed convolution (minidl/functional/conv_transpose.py): output sizes and values against
Keras' ops.conv_transpose (live), the adjoint identity with conv2d (no Keras needed), float64
gradient checks, and the errors."""
import itertools

import numpy as np
import pytest

import minidl as dl
from minidl.functional.conv import conv2d
from minidl.functional.conv_transpose import (conv1d_transpose, conv2d_transpose, transpose_crops,
                                              transpose_output_length)

# (kernel, stride, dilation, padding, output_padding, length): every Keras combination of these
# small values (Keras refuses stride > 1 with dilation > 1, and output_padding >= stride)
SIZE_CASES = [case for case in itertools.product([1, 2, 3, 4], [1, 2, 3], [1, 2], ["valid", "same"],
                                                 [None, 0, 1, 2], [1, 2, 5])
              if not (case[1] > 1 and case[2] > 1) and (case[4] is None or case[4] < case[1])
              and transpose_output_length(case[5], case[0], case[1], case[2], case[3], case[4]) >= 1]
# the values on a third of them (torch's convolutions are the slow part): even and odd kernels,
# every stride, padding and kind of output_padding, lengths 1 and several
VALUE_CASES = [case for case in SIZE_CASES if case[0] in (2, 3) and case[4] in (None, 0, 1) and case[5] in (1, 5)]


def test_output_length_is_keras_for_every_small_case():
    pytest.importorskip("keras")
    from keras.src.backend.common.backend_utils import compute_conv_transpose_output_shape
    for k, s, d, padding, extra, n in SIZE_CASES:
        keras_shape = compute_conv_transpose_output_shape((1, n, 1), (k,), 1, (s,), padding, extra, dilation_rate=(d,))
        assert transpose_output_length(n, k, s, d, padding, extra) == keras_shape[1], (k, s, d, padding, extra, n)
        before, after = transpose_crops(n, k, s, d, padding, extra)
        assert (n - 1) * s + (k - 1) * d + 1 - before - after == keras_shape[1]


def test_values_match_keras_ops_conv_transpose_live(rng):
    keras = pytest.importorskip("keras")
    for k, s, d, padding, extra, n in VALUE_CASES:
        x = rng.normal(size=(2, n, n + 1, 3)).astype("float32")
        W = rng.normal(size=(k, k + 1 if s == 1 else k, 4, 3)).astype("float32")  # uneven kernels too
        options = dict(strides=s, padding=padding, output_padding=extra, dilation_rate=d)
        expected = keras.ops.convert_to_numpy(keras.ops.conv_transpose(x, W, **options))
        if expected.size == 0:
            continue  # the extra width axis can be empty where the height is not; minidl refuses those
        np.testing.assert_allclose(conv2d_transpose(x, W, **options).numpy(), expected, rtol=1e-5, atol=1e-4,
                                   err_msg=str(options))
        expected = keras.ops.convert_to_numpy(keras.ops.conv_transpose(x[:, 0], W[0], **options))
        np.testing.assert_allclose(conv1d_transpose(x[:, 0], W[0], **options).numpy(), expected, rtol=1e-5,
                                   atol=1e-4, err_msg=str(options))


@pytest.mark.parametrize("strides, dilation", [(1, 1), (2, 1), ((3, 2), 1), (1, (2, 1))])
def test_transposed_convolution_is_the_input_gradient_of_the_convolution(rng, strides, dilation):
    """<conv2d(z, W), x> = <z, conv2d_transpose(x, W)>: with 'valid' and the output the full scatter
    (no cut, no extra zeros), the transpose is exactly ∂/∂z of the convolution, upstream x."""
    W = rng.normal(size=(3, 2, 4, 5))            # a convolution kernel from 4 channels to 5
    x = rng.normal(size=(2, 3, 4, 5))            # shaped like that convolution's output
    y = conv2d_transpose(x, W, strides=strides, padding="valid", output_padding=0, dilation_rate=dilation)
    z = dl.Tensor(rng.normal(size=y.shape), requires_grad=True)
    conv = conv2d(z, W, strides=strides, dilation_rate=dilation)
    assert conv.shape == x.shape
    conv.backward(x)
    np.testing.assert_allclose(y.numpy(), z.grad, rtol=1e-12, atol=1e-12)


CONV2D_TRANSPOSE_GRAD_CASES = [  # x shape, kernel (kh, kw, F, C), strides, padding, output_padding, dilation
    ((2, 3, 3, 2), (3, 3, 2, 2), 1, "valid", None, 1),
    ((1, 3, 2, 2), (3, 3, 3, 2), 2, "same", None, 1),        # odd kernel, 'same': a cut at both ends
    ((2, 2, 3, 1), (2, 2, 2, 1), 3, "valid", None, 1),       # stride beyond the kernel: zeros between
    ((1, 2, 3, 2), (3, 2, 2, 2), (2, 3), "same", (1, 2), 1),  # output_padding past the full scatter
    ((1, 4, 3, 2), (2, 3, 2, 2), 1, "same", None, (2, 1)),   # dilation
    ((1, 3, 3, 2), (2, 2, 2, 2), 2, "valid", None, 2),       # strides and dilation (Keras' layer refuses)
    ((2, 1, 1, 3), (1, 1, 2, 3), 1, "valid", None, 1),       # one pixel, 1x1 kernel
]


@pytest.mark.parametrize("x_shape, kernel_shape, strides, padding, output_padding, dilation",
                         CONV2D_TRANSPOSE_GRAD_CASES)
def test_conv2d_transpose_gradient(rng, x_shape, kernel_shape, strides, padding, output_padding, dilation):
    x, W, b = rng.normal(size=x_shape), rng.normal(size=kernel_shape), rng.normal(size=kernel_shape[2])
    dl.gradcheck(lambda x, W, b: conv2d_transpose(x, W, b, strides, padding, output_padding, dilation), (x, W, b))
    dl.gradcheck(lambda x, W: conv2d_transpose(x, W, None, strides, padding, output_padding, dilation), (x, W))


CONV1D_TRANSPOSE_GRAD_CASES = [  # x shape, kernel (k, F, C), strides, padding, output_padding, dilation
    ((2, 4, 3), (3, 2, 3), 2, "same", None, 1),
    ((2, 3, 2), (4, 3, 2), 3, "same", 2, 1),
    ((1, 5, 2), (2, 2, 2), 1, "valid", None, 3),
    ((3, 1, 1), (1, 2, 1), 2, "valid", 1, 1),     # length 1, output_padding
]


@pytest.mark.parametrize("x_shape, kernel_shape, strides, padding, output_padding, dilation",
                         CONV1D_TRANSPOSE_GRAD_CASES)
def test_conv1d_transpose_gradient(rng, x_shape, kernel_shape, strides, padding, output_padding, dilation):
    x, W, b = rng.normal(size=x_shape), rng.normal(size=kernel_shape), rng.normal(size=kernel_shape[1])
    dl.gradcheck(lambda x, W, b: conv1d_transpose(x, W, b, strides, padding, output_padding, dilation), (x, W, b))


@pytest.mark.parametrize("call, message", [
    (lambda: conv2d_transpose(np.zeros((1, 3, 3, 2)), np.zeros((2, 2, 4, 3))), r"expects 3 input channels .* has 2"),
    (lambda: conv2d_transpose(np.zeros((1, 3, 2)), np.zeros((2, 2, 4, 2))), r"expected x \(batch, height"),
    (lambda: conv2d_transpose(np.zeros((1, 3, 3, 2)), np.zeros((2, 2, 4, 2)), padding="causal"),
     r"padding must be 'valid' or 'same', got 'causal'"),
    (lambda: conv2d_transpose(np.zeros((1, 3, 3, 2)), np.zeros((2, 2, 4, 2)), strides=2, output_padding=2),
     r"output_padding 2 must be less than strides \(2, 2\)"),
    (lambda: conv1d_transpose(np.zeros((1, 1, 2)), np.zeros((2, 4, 2)), padding="same", output_padding=0),
     r"spatial axis 0 of length 1 gives an empty output"),
    (lambda: conv1d_transpose(np.zeros((1, 3, 2)), np.zeros((2, 4, 2)), output_padding=(1, 1)),
     r"output_padding must be None, an int or 1 ints"),
])
def test_errors_name_what_was_expected_and_what_came(call, message):
    with pytest.raises(ValueError, match=message):
        call()
