import gc
import weakref

import numpy as np
import pytest

import minidl as dl
import minidl.tensor
import minidl.functional as F
from minidl.tensor import Tensor


def test_python_floats_become_floatx_and_arrays_keep_their_dtype():
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor(np.zeros(3)).dtype == np.float64
    assert Tensor(np.zeros(3, dtype=np.int64)).dtype == np.int64
    dl.set_floatx("float64")
    assert Tensor(1.5).dtype == np.float64


def test_scalar_operands_do_not_promote_float32():
    x = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    for y in (x * 2, 2 * x, x + 1, 1 - x, x / 3, 3 / x, x ** 2, -x):
        assert y.dtype == np.float32


def test_backward_accumulates_a_tensor_used_twice():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = (x * x + x).sum()          # dy/dx = 2x + 1
    y.backward()
    np.testing.assert_allclose(x.grad, [3.0, 5.0, 7.0])


def test_broadcast_gradients_sum_back_to_the_input_shape():
    a = Tensor(np.ones((2, 3, 4)), requires_grad=True)
    b = Tensor(np.ones((3, 1)), requires_grad=True)
    (a * b).sum().backward()
    assert b.grad.shape == (3, 1)
    np.testing.assert_allclose(b.grad, np.full((3, 1), 8.0))


def test_backward_through_a_chain_of_100000_ops_does_not_recurse():
    x = Tensor(np.ones(2), requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y + 1.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0, 1.0])


def test_graph_is_freed_after_backward_and_a_second_backward_says_so():
    x = Tensor(np.ones(3), requires_grad=True)
    y = (x * 2).tanh().sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward_that_accumulates():
    x = Tensor(np.ones(3), requires_grad=True)
    y = (x * 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, [4.0, 4.0, 4.0])


def test_intermediate_arrays_are_released_after_backward():
    x = Tensor(np.ones((100, 100)), requires_grad=True)
    hidden = (x * 2).tanh()
    creator = weakref.ref(hidden.creator)
    loss = hidden.sum()
    del hidden
    loss.backward()
    del loss
    gc.collect()
    assert creator() is None


def test_backward_grad_shape_must_match():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"grad has shape \(2,\)"):
        (x * 2).backward(np.ones(2))


def test_detach_cuts_the_graph_and_numpy_copies_out():
    x = Tensor(np.ones(2), requires_grad=True)
    y = (x * 3).detach()
    assert y.creator is None and not y.requires_grad
    assert isinstance(y.numpy(), np.ndarray)


def test_operators_call_the_ops_minidl_hands_to_tensor():
    # tensor.py cannot import minidl.functional (which imports it); minidl/__init__.py hands it over
    assert minidl.tensor.F is F
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    assert type((x + 1).creator).__name__ == "Add" and type((x @ x).creator).__name__ == "MatMul"


def test_methods_reach_functional():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_allclose(x.sum(axis=0).data, [3, 5, 7])
    np.testing.assert_allclose(x.mean().data, 2.5)
    assert x.reshape(3, 2).shape == (3, 2)
    assert x.transpose().shape == (3, 2) and x.T.shape == (3, 2)
    np.testing.assert_allclose(x.max(axis=1).data, [2, 5])
    np.testing.assert_allclose(x[1, 2].data, 5.0)
    np.testing.assert_allclose((x @ np.ones((3, 1))).data, [[3], [12]])


def test_to_cpu_is_a_no_op_on_cpu():
    x = Tensor(np.ones(2))
    assert x.to("cpu") is x
    with pytest.raises(ValueError, match="'cpu' or 'gpu'"):
        x.to("tpu")
