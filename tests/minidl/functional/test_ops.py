"""Float64 gradient checks of every primitive op, over several shapes."""
import numpy as np
import pytest

import minidl as dl
import minidl.functional as F

rng = np.random.default_rng(0)


def normal(*shape):
    return rng.normal(size=shape)


def positive(*shape):
    return rng.uniform(0.5, 2.0, size=shape)


BINARY_SHAPES = [((3, 4), (3, 4)), ((2, 3, 4), (3, 1)), ((1,), (5,)), ((), (2, 2)), ((4, 1), (1, 4))]


@pytest.mark.parametrize("a_shape,b_shape", BINARY_SHAPES)
@pytest.mark.parametrize("op", [F.add, F.sub, F.mul, F.div])
def test_binary_ops_broadcast_gradients(op, a_shape, b_shape):
    dl.gradcheck(op, (normal(*a_shape), positive(*b_shape)))


@pytest.mark.parametrize("a_shape,b_shape", [((3, 4), (4, 2)), ((2, 3, 4), (4, 5)), ((4,), (4, 3)),
                                             ((3, 4), (4,)), ((2, 1, 3, 4), (5, 4, 2)), ((1, 1), (1, 1))])
def test_matmul(a_shape, b_shape):
    dl.gradcheck(F.matmul, (normal(*a_shape), normal(*b_shape)))


@pytest.mark.parametrize("op,make", [(F.exp, normal), (F.log, positive), (F.sqrt, positive),
                                     (F.abs, normal), (F.tanh, normal), (F.sigmoid, normal),
                                     (F.relu, normal), (F.leaky_relu, normal), (F.elu, normal),
                                     (F.neg, normal), (lambda x: F.pow(x, 3), normal),
                                     (lambda x: F.pow(x, -0.5), positive),
                                     (lambda x: F.clip(x, -0.5, 0.5), normal)])
@pytest.mark.parametrize("shape", [(1,), (3, 4), (2, 1, 5), ()])
def test_unary_ops(op, make, shape):
    dl.gradcheck(op, (make(*shape),))


@pytest.mark.parametrize("op", [F.softmax, F.log_softmax])
@pytest.mark.parametrize("shape,axis", [((3, 4), -1), ((2, 3, 4), 1), ((1, 5), -1), ((4,), 0)])
def test_softmax_family(op, shape, axis):
    dl.gradcheck(lambda x: op(x, axis=axis), (normal(*shape),))


def test_softmax_is_stable_for_large_inputs():
    y = F.softmax(dl.Tensor(np.array([[1000.0, 0.0], [-1000.0, 0.0]])))
    np.testing.assert_allclose(y.data, [[1.0, 0.0], [0.0, 1.0]])
    assert np.isfinite(F.log_softmax(dl.Tensor(np.array([1e4, 0.0]))).data).all()


def test_sigmoid_does_not_overflow_float32():
    with np.errstate(over="raise"):
        y = F.sigmoid(dl.Tensor(np.array([-1000.0, 1000.0], dtype=np.float32)))
    np.testing.assert_allclose(y.data, [0.0, 1.0])


@pytest.mark.parametrize("op", [F.sum, F.mean, F.max])
@pytest.mark.parametrize("shape,axis,keepdims", [((3, 4), None, False), ((3, 4), 0, True), ((2, 3, 4), (0, 2), False),
                                                 ((1, 5), -1, False), ((5,), 0, True), ((), None, False)])
def test_reductions(op, shape, axis, keepdims):
    dl.gradcheck(lambda x: op(x, axis=axis, keepdims=keepdims), (normal(*shape),))


def test_sum_and_mean_of_empty_reductions():
    empty = dl.Tensor(np.zeros((0, 3)), requires_grad=True)
    np.testing.assert_allclose(F.sum(empty, axis=0).data, [0, 0, 0])
    F.sum(empty).backward()
    assert empty.grad.shape == (0, 3)
    with pytest.raises(ValueError, match="empty tensor"):
        F.max(dl.Tensor(np.zeros((0,))))


def test_max_shares_the_gradient_between_ties():
    x = dl.Tensor(np.array([1.0, 3.0, 3.0]), requires_grad=True)
    F.max(x).backward()
    np.testing.assert_allclose(x.grad, [0.0, 0.5, 0.5])


@pytest.mark.parametrize("shape,new", [((3, 4), (4, 3)), ((2, 3, 4), (6, -1)), ((1,), ()), ((6,), (1, 2, 3))])
def test_reshape(shape, new):
    dl.gradcheck(lambda x: F.reshape(x, new), (normal(*shape),))


@pytest.mark.parametrize("shape,axes", [((3, 4), None), ((2, 3, 4), (1, 2, 0)), ((2, 3, 4), (2, 0, 1))])
def test_transpose(shape, axes):
    dl.gradcheck(lambda x: F.transpose(x, axes), (normal(*shape),))


@pytest.mark.parametrize("index", [1, slice(1, 3), (slice(None), 2), np.array([0, 2, 2, 1]),
                                   (np.array([0, 1, 1]), np.array([2, 2, 0])), np.array([True, False, True]),
                                   (Ellipsis, None, 1)])
def test_getitem(index):
    dl.gradcheck(lambda x: F.getitem(x, index), (normal(3, 4),))


def test_getitem_counts_every_repeat():
    x = dl.Tensor(np.zeros(3), requires_grad=True)
    F.sum(F.getitem(x, np.array([1, 1, 1, 2]))).backward()
    np.testing.assert_allclose(x.grad, [0, 3, 1])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate_and_stack(axis):
    a, b = normal(2, 3), normal(2, 3)
    dl.gradcheck(lambda x, y: F.concatenate([x, y, x], axis=axis), (a, b))
    dl.gradcheck(lambda x, y: F.stack([x, y], axis=axis), (a, b))


def test_pad():
    dl.gradcheck(lambda x: F.pad(x, ((1, 0), (2, 3)), value=1.0), (normal(2, 3),))
    with pytest.raises(ValueError, match=r"expected 2 \(before, after\) pairs"):
        F.pad(dl.Tensor(np.ones((2, 3))), ((1, 1),))


def test_where():
    condition = np.array([[True, False, True], [False, False, True]])
    dl.gradcheck(lambda a, b: F.where(condition, a, b), (normal(2, 3), normal(1, 3)))


def test_cast_keeps_the_gradient_dtype():
    x = dl.Tensor(np.ones(3), requires_grad=True)
    y = F.cast(x, "float32")
    assert y.dtype == np.float32
    F.sum(y).backward()
    assert x.grad.dtype == np.float64


def test_affine_with_and_without_bias_and_leading_axes():
    dl.gradcheck(F.affine, (normal(2, 3, 4), normal(4, 5), normal(5)))
    dl.gradcheck(F.affine, (normal(1, 4), normal(4, 2)))


def test_matmul_shape_mismatch_is_explained():
    with pytest.raises(ValueError, match=r"inner sizes differ, shapes \(2, 3\) @ \(4, 5\)"):
        F.matmul(dl.Tensor(np.ones((2, 3))), dl.Tensor(np.ones((4, 5))))


def test_dropout_scales_kept_values_and_is_identity_at_inference():
    x = dl.Tensor(np.ones((200, 50)))
    y = F.dropout(x, 0.4, training=True).data
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.6)
    assert abs(kept.mean() - 0.6) < 0.02
    assert F.dropout(x, 0.4, training=False) is x


def test_dropout_gradient_follows_its_mask():
    x = dl.Tensor(np.ones((4, 5)), requires_grad=True)
    y = F.dropout(x, 0.5, training=True)
    F.sum(y).backward()
    np.testing.assert_allclose(x.grad, y.data)
