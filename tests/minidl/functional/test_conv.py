"""conv1d / conv2d, im2col / col2im: layout, adjointness, gradients, Keras values, errors."""
import numpy as np
import pytest

import minidl as dl
import minidl.functional as F
from minidl.functional.conv import (MIN_CHUNK_ROWS, SMALL_PRODUCT, col2im, col2im_1d, conv1d, conv2d, im2col, im2col_1d,
                                    same_padding, weights_product)
from minidl.tensor import Tensor
from tests.reference.make_conv_fixtures import CASES, load


def test_im2col_lays_out_one_patch_per_row():
    x = np.arange(2 * 4 * 5 * 3, dtype=np.float64).reshape(2, 4, 5, 3)
    col = im2col(x, (2, 3), strides=(2, 1), dilation_rate=(1, 1))
    assert col.shape == (2, 2, 3, 2, 3, 3)
    # row (b=1, p=1, q=2) is the patch x[1, 2:4, 2:5, :], kernel row by kernel row
    np.testing.assert_array_equal(col[1, 1, 2], x[1, 2:4, 2:5, :])
    np.testing.assert_array_equal(col.reshape(-1, 18)[1 * 6 + 1 * 3 + 2], x[1, 2:4, 2:5, :].reshape(-1))


@pytest.mark.parametrize("channels", [1, 3])
def test_im2col_matches_slicing_per_offset(rng, channels):
    # one channel copies a slice per kernel offset, more channels one strided view: same layout
    x = rng.normal(size=(2, 7, 8, channels))
    for strides, dilation in [((1, 1), (1, 1)), ((2, 3), (1, 1)), ((1, 2), (2, 2))]:
        col = im2col(x, (3, 2), strides, dilation)
        out_h, out_w = col.shape[1:3]
        for i in range(3):
            for j in range(2):
                expected = x[:, i * dilation[0]::strides[0], j * dilation[1]::strides[1]][:, :out_h, :out_w]
                np.testing.assert_array_equal(col[:, :, :, i, j], expected)


def test_im2col_1d_dilation():
    x = np.arange(10, dtype=np.float64).reshape(1, 10, 1)
    col = im2col_1d(x, kernel_size=3, stride=2, dilation_rate=2)
    np.testing.assert_array_equal(col[0, :, :, 0], [[0, 2, 4], [2, 4, 6], [4, 6, 8]])


@pytest.mark.parametrize("strides, dilation", [((1, 1), (1, 1)), ((2, 3), (1, 1)), ((1, 2), (2, 1))])
def test_col2im_is_the_adjoint_of_im2col(rng, strides, dilation):
    x = rng.normal(size=(2, 7, 8, 3))
    col = im2col(x, (3, 2), strides, dilation)
    g = rng.normal(size=col.shape)
    # <im2col(x), g> = <x, col2im(g)>: col2im adds every patch entry back where it came from
    np.testing.assert_allclose((col * g).sum(), (x * col2im(g, x.shape, strides, dilation)).sum())


def test_col2im_1d_is_the_adjoint_of_im2col_1d(rng):
    x = rng.normal(size=(2, 9, 3))
    col = im2col_1d(x, 3, 2, 2)
    g = rng.normal(size=col.shape)
    np.testing.assert_allclose((col * g).sum(), (x * col2im_1d(g, x.shape, 2, 2)).sum())


@pytest.mark.parametrize("size, kernel, stride, dilation, expected", [
    (7, 3, 1, 1, (1, 1)), (7, 3, 2, 1, (1, 1)), (6, 2, 2, 1, (0, 0)), (7, 2, 2, 1, (0, 1)),
    (5, 4, 1, 1, (1, 2)), (8, 3, 1, 2, (2, 2)), (1, 3, 1, 1, (1, 1)), (10, 3, 3, 1, (1, 1))])
def test_same_padding_puts_the_extra_step_at_the_end(size, kernel, stride, dilation, expected):
    assert same_padding(size, kernel, stride, dilation) == expected


def dims(value) -> str:
    """A shape or a per-axis setting as text for a test id: (2, 5, 5) -> "2x5x5"."""
    return "x".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def conv_id(op: str, x_shape, kernel_shape, strides, padding, dilation) -> str:
    """conv2d-x1x4x5x2-k3x3x2x3-strides1-valid-dilation1: the op first, so a failure says which."""
    return f"{op}-x{dims(x_shape)}-k{dims(kernel_shape)}-strides{dims(strides)}-{padding}-dilation{dims(dilation)}"


# --- gradients (float64) ------------------------------------------------------------------------
CONV2D_GRAD_CASES = [
    # x shape, kernel shape, strides, padding, dilation
    ((1, 4, 5, 2), (3, 3, 2, 3), 1, "valid", 1),      # batch 1
    ((2, 5, 5, 2), (3, 3, 2, 2), 2, "same", 1),       # strides 2, odd kernel
    ((2, 5, 6, 1), (2, 2, 1, 2), 2, "same", 1),       # even kernel: extra padding at the end
    ((2, 4, 4, 2), (4, 3, 2, 2), 1, "same", 1),
    ((1, 6, 6, 2), (3, 3, 2, 2), 1, "same", 2),       # dilation 2
    ((1, 3, 3, 8), (2, 2, 8, 9), 1, "valid", 1),      # many channels
    ((2, 1, 5, 2), (1, 3, 2, 2), (1, 2), "valid", 1),  # height 1
    ((2, 5, 4, 1), (3, 3, 1, 3), 1, "same", 1),        # one channel: im2col slices per offset
    ((1, 7, 6, 3), (3, 2, 3, 2), (2, 1), "same", (1, 2)),  # strides and dilation, uneven
]


@pytest.mark.parametrize("x_shape, kernel_shape, strides, padding, dilation", CONV2D_GRAD_CASES,
                         ids=[conv_id("conv2d", *case) for case in CONV2D_GRAD_CASES])
def test_conv2d_gradient(rng, x_shape, kernel_shape, strides, padding, dilation):
    x, W, b = rng.normal(size=x_shape), rng.normal(size=kernel_shape), rng.normal(size=kernel_shape[-1])
    dl.gradcheck(lambda x, W, b: conv2d(x, W, b, strides, padding, dilation), (x, W, b))


def test_conv2d_gradient_without_bias(rng):
    x, W = rng.normal(size=(2, 4, 4, 2)), rng.normal(size=(2, 2, 2, 3))
    dl.gradcheck(lambda x, W: conv2d(x, W, strides=2, padding="same"), (x, W))


CONV1D_GRAD_CASES = [
    ((1, 6, 2), (3, 2, 3), 1, "valid", 1),
    ((2, 7, 2), (3, 2, 2), 2, "same", 1),
    ((2, 6, 3), (4, 3, 2), 2, "same", 1),
    ((2, 7, 2), (3, 2, 2), 1, "causal", 2),
    ((2, 9, 1), (3, 1, 2), 1, "same", 2),
    ((3, 1, 4), (1, 4, 3), 1, "valid", 1),   # length 1
    ((2, 1, 2), (3, 2, 2), 1, "same", 1),    # length 1, 'same' with a bigger kernel
]


@pytest.mark.parametrize("x_shape, kernel_shape, strides, padding, dilation", CONV1D_GRAD_CASES,
                         ids=[conv_id("conv1d", *case) for case in CONV1D_GRAD_CASES])
def test_conv1d_gradient(rng, x_shape, kernel_shape, strides, padding, dilation):
    x, W, b = rng.normal(size=x_shape), rng.normal(size=kernel_shape), rng.normal(size=kernel_shape[-1])
    dl.gradcheck(lambda x, W, b: conv1d(x, W, b, strides, padding, dilation), (x, W, b))


def test_conv_gradient_only_for_what_needs_it(rng):
    x = Tensor(rng.normal(size=(2, 5, 5, 2)).astype("float32"))
    W = Tensor(rng.normal(size=(3, 3, 2, 4)).astype("float32"), requires_grad=True)
    y = conv2d(x, W, padding="same")
    y.backward(np.ones(y.shape, dtype="float32"))
    assert W.grad.dtype == np.float32 and W.grad.shape == W.shape and x.grad is None


@pytest.mark.parametrize("rows, columns, filters", [(10_000, 10, 32), (7_001, 9, 16), (300, 10, 32), (500, 290, 64)])
def test_weights_product_in_row_chunks_equals_one_product(rng, rows, columns, filters):
    # the first two are narrow enough to go in chunks (a last chunk shorter than the others
    # included), the last two in one product
    col, g2 = rng.normal(size=(rows, columns)), rng.normal(size=(rows, filters))
    chunk_rows = SMALL_PRODUCT // (columns * filters)
    chunked = MIN_CHUNK_ROWS <= chunk_rows < rows
    assert chunked == (columns < 20 and rows > 1_000)
    np.testing.assert_allclose(weights_product(col, g2), np.einsum("nk,nf->kf", col, g2), rtol=1e-10, atol=1e-10)


def test_narrow_conv_weight_gradient_matches_the_summed_outer_products(rng):
    # one input channel and 8·38·38 outputs: the weight gradient goes in chunks of rows
    x = Tensor(rng.normal(size=(8, 40, 40, 1)))
    W = Tensor(rng.normal(size=(3, 3, 1, 32)), requires_grad=True)
    b = Tensor(np.zeros(32), requires_grad=True)
    gy = rng.normal(size=(8, 38, 38, 32))
    conv2d(x, W, b).backward(gy)
    patches = im2col(x.data, (3, 3))   # (8, 38, 38, 3, 3, 1)
    np.testing.assert_allclose(W.grad, np.einsum("bpqijc,bpqf->ijcf", patches, gy), rtol=1e-10)
    np.testing.assert_allclose(b.grad, gy.sum(axis=(0, 1, 2)), rtol=1e-10)

# --- values: Keras fixtures, torch and Keras live ------------------------------------------------
def _activation(kwargs):
    return F.get_activation(kwargs.get("activation"))


@pytest.mark.parametrize("case", sorted(CASES["conv_conv2d"]))
def test_conv2d_matches_keras_fixture(case):
    _, kwargs, _, _ = CASES["conv_conv2d"][case]
    data = load("conv_conv2d")[case]
    y = _activation(kwargs)(conv2d(data["x"], data["w0"], data.get("w1"), kwargs.get("strides", 1),
                                   kwargs.get("padding", "valid"), kwargs.get("dilation_rate", 1)))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), data["y"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", sorted(CASES["conv_conv1d"]))
def test_conv1d_matches_keras_fixture(case):
    _, kwargs, _, _ = CASES["conv_conv1d"][case]
    data = load("conv_conv1d")[case]
    y = _activation(kwargs)(conv1d(data["x"], data["w0"], data.get("w1"), kwargs.get("strides", 1),
                                   kwargs.get("padding", "valid"), kwargs.get("dilation_rate", 1)))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), data["y"], atol=1e-5, rtol=1e-5)


def test_conv2d_matches_torch_live(rng):
    torch = pytest.importorskip("torch")
    x, W, b = rng.normal(size=(2, 9, 8, 3)), rng.normal(size=(3, 2, 3, 5)), rng.normal(size=5)
    for strides, dilation in [(1, 1), (2, 1), (1, 2), ((2, 3), 1)]:
        y = conv2d(x, W, b, strides, "valid", dilation).numpy()
        expected = torch.nn.functional.conv2d(
            torch.tensor(x).permute(0, 3, 1, 2), torch.tensor(W).permute(3, 2, 0, 1), torch.tensor(b),
            stride=strides, dilation=dilation).permute(0, 2, 3, 1).numpy()
        np.testing.assert_allclose(y, expected, atol=1e-12, rtol=1e-10)


def test_same_padding_matches_keras_live(rng):
    """Every small (size, kernel, stride, dilation) of a 'same' 1-D convolution, against Keras."""
    pytest.importorskip("keras")
    from keras import ops
    for size in range(1, 8):
        x = rng.normal(size=(1, size, 2)).astype("float32")
        for kernel in (1, 2, 3, 4):
            W = rng.normal(size=(kernel, 2, 1)).astype("float32")
            for stride, dilation in ((1, 1), (2, 1), (3, 1), (1, 2)):
                expected = ops.convert_to_numpy(ops.conv(x, W, strides=stride, padding="same",
                                                         dilation_rate=dilation))
                y = conv1d(x, W, strides=stride, padding="same", dilation_rate=dilation).numpy()
                np.testing.assert_allclose(y, expected, atol=1e-5, rtol=1e-5,
                                           err_msg=f"size {size} kernel {kernel} stride {stride} dilation {dilation}")


# --- errors ------------------------------------------------------------------------------------------
def test_conv2d_errors_name_expected_and_received():
    x, W = np.zeros((1, 4, 4, 2), "float32"), np.zeros((3, 3, 2, 1), "float32")
    with pytest.raises(ValueError, match=r"conv2d: expected x \(batch, height, width, channels\).*\(4, 4, 2\)"):
        conv2d(x[0], W)
    with pytest.raises(ValueError, match=r"expects 3 input channels, x \(1, 4, 4, 2\) has 2"):
        conv2d(x, np.zeros((3, 3, 3, 1), "float32"))
    with pytest.raises(ValueError, match=r"kernel spans 5 steps .* only 4"):
        conv2d(x, np.zeros((5, 1, 2, 1), "float32"))
    with pytest.raises(ValueError, match=r"strides must be positive, got 0"):
        conv2d(x, W, strides=0)
    with pytest.raises(ValueError, match=r"padding must be 'valid' or 'same', got 'causal'"):
        conv2d(x, W, padding="causal")
    with pytest.raises(ValueError, match=r"conv1d: the kernel spans 5 steps"):
        conv1d(np.zeros((1, 4, 2)), np.zeros((3, 2, 1)), dilation_rate=2)


@pytest.mark.cupy
def test_conv2d_on_cupy_matches_numpy(rng):
    import cupy
    x, W, b = (rng.normal(size=s).astype("float32") for s in [(2, 7, 6, 3), (3, 3, 3, 4), (4,)])
    tensors = [Tensor(cupy.asarray(a), requires_grad=True) for a in (x, W, b)]
    y = conv2d(*tensors, strides=2, padding="same")
    y.backward(cupy.ones(y.shape, dtype="float32"))
    reference = [Tensor(a, requires_grad=True) for a in (x, W, b)]
    y_ref = conv2d(*reference, strides=2, padding="same")
    y_ref.backward(np.ones(y_ref.shape, dtype="float32"))
    np.testing.assert_allclose(y.numpy(), y_ref.numpy(), atol=1e-5, rtol=1e-5)
    for t, r in zip(tensors, reference):
        np.testing.assert_allclose(cupy.asnumpy(t.grad), r.grad, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("function, x_shape, kernel_shape", [
    pytest.param(conv2d, (2, 5, 5, 2), (3, 3, 2, 4), id="conv2d-relu"),
    pytest.param(conv1d, (2, 7, 3), (3, 3, 4), id="conv1d-relu")])
def test_fused_relu_equals_relu_after_the_convolution(rng, function, x_shape, kernel_shape):
    x, W, b = rng.normal(size=x_shape), rng.normal(size=kernel_shape), rng.normal(size=kernel_shape[-1])
    dl.gradcheck(lambda x, W, b: function(x, W, b, padding="same", relu=True), (x, W, b))
    np.testing.assert_array_equal(function(x, W, b, padding="same", relu=True).numpy(),
                                  F.relu(function(x, W, b, padding="same")).numpy())


def test_workspace_buffers_reused_across_live_calls_keep_gradients_exact(rng):
    """Two convolutions of one shape alive at once (each holds its column matrix until backward),
    a pass under no_grad (which gives its buffers back at once), then a third call on the buffers
    given back: every value and gradient equals a fresh float64 computation through primitives."""
    from minidl import workspace
    from minidl.function import no_grad
    workspace.clear()
    calls = [[rng.normal(size=(2, 6, 5, 3)), rng.normal(size=(3, 3, 3, 4)), rng.normal(size=4)] for _ in range(3)]

    def run(arrays):
        tensors = [Tensor(a.copy(), requires_grad=True) for a in arrays]
        return tensors, conv2d(*tensors, padding="same", relu=True)

    def finish(tensors, y, weights):
        (y * weights).sum().backward()
        return [y.data.copy()] + [t.grad.copy() for t in tensors]

    weights = rng.normal(size=(2, 6, 5, 4))
    first, second = run(calls[0]), run(calls[1])
    got = [finish(*first, weights), finish(*second, weights)]
    with no_grad():
        conv2d(*[Tensor(a) for a in calls[2]], padding="same", relu=True)
    assert workspace.held_bytes() > 0
    got.append(finish(*run(calls[2]), weights))
    for arrays, got_call in zip(calls, got):
        tensors = [Tensor(a.copy(), requires_grad=True) for a in arrays]
        x, W, b = tensors
        patches = F.stack([F.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))[:, i:i + 6, j:j + 5, :]
                           for i in range(3) for j in range(3)], axis=3)   # (2, 6, 5, 9, 3)
        y = F.relu(F.matmul(F.reshape(patches, (60, 27)), F.reshape(W, (27, 4))) + b)
        expected = finish(tensors, F.reshape(y, (2, 6, 5, 4)), weights)
        for g, e in zip(got_call, expected):
            np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-10)
