"""Shape ops (minidl/functional/shape.py): values against NumPy and float64 gradient checks of
reshape, transpose, indexing, concatenate, stack and pad."""
import numpy as np
import pytest

import minidl as dl
import minidl.functional as F


@pytest.mark.parametrize("shape, new", [pytest.param((3, 4), (4, 3), id="reshape-swap"),
                                        pytest.param((2, 3, 4), (6, -1), id="reshape-inferred"),
                                        pytest.param((1,), (), id="reshape-to-scalar"),
                                        pytest.param((6,), (1, 2, 3), id="reshape-up")])
def test_reshape(rng, shape, new):
    x = rng.normal(size=shape)
    np.testing.assert_array_equal(F.reshape(dl.Tensor(x), new).data, x.reshape(new))
    dl.gradcheck(lambda x: F.reshape(x, new), (x,))


@pytest.mark.parametrize("shape, axes", [pytest.param((3, 4), None, id="transpose-matrix"),
                                         pytest.param((2, 3, 4), (1, 2, 0), id="transpose-120"),
                                         pytest.param((2, 3, 4), (2, 0, 1), id="transpose-201")])
def test_transpose(rng, shape, axes):
    x = rng.normal(size=shape)
    np.testing.assert_array_equal(F.transpose(dl.Tensor(x), axes).data, np.transpose(x, axes))
    dl.gradcheck(lambda x: F.transpose(x, axes), (x,))


@pytest.mark.parametrize("index", [
    pytest.param(1, id="getitem-int"), pytest.param(slice(1, 3), id="getitem-slice"),
    pytest.param((slice(None), 2), id="getitem-column"), pytest.param(np.array([0, 2, 2, 1]), id="getitem-repeats"),
    pytest.param((np.array([0, 1, 1]), np.array([2, 2, 0])), id="getitem-pairs"),
    pytest.param(np.array([True, False, True]), id="getitem-bool"),
    pytest.param((Ellipsis, None, 1), id="getitem-ellipsis-newaxis")])
def test_getitem(rng, index):
    x = rng.normal(size=(3, 4))
    np.testing.assert_array_equal(F.getitem(dl.Tensor(x), index).data, x[index])
    dl.gradcheck(lambda x: F.getitem(x, index), (x,))


def test_getitem_counts_every_repeat():
    x = dl.Tensor(np.zeros(3), requires_grad=True)
    F.sum(F.getitem(x, np.array([1, 1, 1, 2]))).backward()
    np.testing.assert_allclose(x.grad, [0, 3, 1])


@pytest.mark.parametrize("axis", [0, 1, -1], ids=["axis0", "axis1", "axis-1"])
@pytest.mark.parametrize("op, reference", [
    pytest.param(lambda xs, axis: F.concatenate([xs[0], xs[1], xs[0]], axis=axis),
                 lambda xs, axis: np.concatenate([xs[0], xs[1], xs[0]], axis=axis), id="concatenate"),
    pytest.param(lambda xs, axis: F.stack(xs, axis=axis), lambda xs, axis: np.stack(xs, axis=axis), id="stack")])
def test_concatenate_and_stack(rng, op, reference, axis):
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    np.testing.assert_array_equal(op([dl.Tensor(a), dl.Tensor(b)], axis).data, reference([a, b], axis))
    dl.gradcheck(lambda x, y: op([x, y], axis), (a, b))


def test_pad(rng):
    x = rng.normal(size=(2, 3))
    np.testing.assert_array_equal(F.pad(dl.Tensor(x), ((1, 0), (2, 3)), value=1.0).data,
                                  np.pad(x, ((1, 0), (2, 3)), constant_values=1.0))
    dl.gradcheck(lambda x: F.pad(x, ((1, 0), (2, 3)), value=1.0), (x,))
    with pytest.raises(ValueError, match=r"expected 2 \(before, after\) pairs"):
        F.pad(dl.Tensor(np.ones((2, 3))), ((1, 1),))
