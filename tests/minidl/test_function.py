"""Function (minidl/function.py): apply wires the graph, backward gives one gradient per input,
no_grad builds no graph, and the errors a new op's author meets say what is wrong."""
import weakref

import numpy as np
import pytest

import minidl as dl
from minidl.function import Function, is_grad_enabled, no_grad
from minidl.tensor import Tensor


class Scale(Function):
    """y = a·x + b·w, with a second input so that gradients per input can be told apart."""

    def __init__(self, a: float, b: float):
        self.a, self.b = a, b

    def forward(self, x, w):
        self.seen_will_backward = self.will_backward()
        return self.a * x + self.b * w

    def backward(self, gy):
        return self.a * gy, self.b * gy


class SplitHalves(Function):
    """Two outputs: the first and second half of x, so that each output's gradient goes to its half."""

    def forward(self, x):
        self.half, self.rest = len(x) // 2, len(x) - len(x) // 2
        return x[:self.half].copy(), x[self.half:].copy()

    def backward(self, g_first, g_second):
        first = np.zeros(self.half) if g_first is None else g_first
        second = np.zeros(self.rest) if g_second is None else g_second
        return np.concatenate([first, second])


class Masked(Function):
    """y = x ⊙ mask; the mask is an input with no gradient, so backward returns None for it."""

    def forward(self, x, mask):
        self.mask = mask
        return x * mask

    def backward(self, gy):
        return gy * self.mask, None


def test_apply_wires_the_output_to_its_function_and_the_function_to_its_inputs():
    x, w = Tensor(np.ones(3), requires_grad=True), Tensor(np.full(3, 2.0))
    op = Scale(3.0, 5.0)
    y = op.apply(x, w)
    np.testing.assert_array_equal(y.data, [13.0, 13.0, 13.0])
    assert y.creator is op and y.requires_grad
    assert op.inputs == (x, w) and op.needs_input_grad == (True, False)
    assert [ref() for ref in op.outputs] == [y]
    assert all(isinstance(ref, weakref.ref) for ref in op.outputs)  # outputs do not keep themselves alive
    assert op.seen_will_backward


def test_arrays_given_to_apply_are_constants():
    x = Tensor(np.ones(2), requires_grad=True)
    op = Scale(1.0, 1.0)
    op.apply(x, np.array([4.0, 5.0]))
    constant = op.inputs[1]
    assert isinstance(constant, Tensor) and not constant.requires_grad and constant.creator is None


def test_without_any_input_that_needs_a_gradient_no_graph_is_recorded():
    op = Scale(2.0, 1.0)
    y = op.apply(np.ones(2), np.ones(2))
    assert y.creator is None and not y.requires_grad
    assert op.inputs == () and not op.seen_will_backward


def test_backward_returns_one_gradient_per_input():
    x, w = Tensor(np.array([1.0, 2.0]), requires_grad=True), Tensor(np.array([3.0, 4.0]), requires_grad=True)
    y = Scale(3.0, -2.0).apply(x, w)
    y.backward(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(x.grad, [3.0, 30.0])     # ∂y/∂x = a
    np.testing.assert_array_equal(w.grad, [-2.0, -20.0])   # ∂y/∂w = b


def test_an_input_that_needs_no_gradient_gets_none_even_if_backward_computes_one():
    x, w = Tensor(np.ones(2), requires_grad=True), Tensor(np.ones(2))
    Scale(1.0, 7.0).apply(x, w).backward(np.ones(2))
    assert w.grad is None and x.grad is not None


def test_backward_may_return_none_for_an_input_without_a_gradient():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    mask = Tensor(np.array([1.0, 0.0, 1.0]), requires_grad=True)  # even if it asked for one
    Masked().apply(x, mask).backward(np.full(3, 2.0))
    np.testing.assert_array_equal(x.grad, [2.0, 0.0, 2.0])
    assert mask.grad is None


def test_a_function_with_two_outputs_gets_both_gradients_or_none_for_an_unused_one():
    x = Tensor(np.arange(4.0), requires_grad=True)
    first, second = SplitHalves().apply(x)
    assert first.creator is second.creator
    np.testing.assert_array_equal(second.data, [2.0, 3.0])
    (first.sum() * 2 + second.sum() * 3).backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 3.0, 3.0])
    y = Tensor(np.arange(4.0), requires_grad=True)
    first, _ = SplitHalves().apply(y)
    first.sum().backward()  # the second output is unused: its gradient arrives as None
    np.testing.assert_array_equal(y.grad, [1.0, 1.0, 0.0, 0.0])


def test_each_call_is_a_new_instance_and_backward_releases_what_forward_saved():
    x = Tensor(np.ones(2), requires_grad=True)
    y = Masked().apply(x, np.array([1.0, 0.0]))
    z = Masked().apply(x, np.array([0.0, 1.0]))
    assert y.creator is not z.creator
    op = y.creator
    (y + z).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])  # each call used its own mask
    assert op.released and not hasattr(op, "mask") and op.inputs == ()  # the graph let go of x


def test_no_grad_builds_no_graph_and_restores_the_previous_state_even_on_error():
    x = Tensor(np.ones(3), requires_grad=True)
    with no_grad():
        assert not is_grad_enabled()
        op = Scale(2.0, 0.0)
        y = op.apply(x, np.zeros(3))
        assert not op.seen_will_backward
        with no_grad():
            pass
        assert not is_grad_enabled()  # the inner block restored "off", not "on"
    assert y.creator is None and not y.requires_grad and op.inputs == ()
    assert is_grad_enabled()
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert is_grad_enabled()
    assert dl.no_grad is no_grad and dl.is_grad_enabled is is_grad_enabled


def test_a_function_without_forward_or_backward_says_so():
    class Unfinished(Function):
        pass

    with pytest.raises(NotImplementedError):
        Unfinished().apply(Tensor(np.ones(1)))

    class ForwardOnly(Function):
        def forward(self, x):
            return x * 2

    y = ForwardOnly().apply(Tensor(np.ones(2), requires_grad=True))
    with pytest.raises(NotImplementedError):
        y.sum().backward()


def test_backward_through_a_freed_graph_names_the_fix():
    x = Tensor(np.ones(2), requires_grad=True)
    y = Scale(2.0, 0.0).apply(x, np.zeros(2)).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"an earlier backward freed; pass retain_graph=True"):
        y.backward()


def test_repr_names_the_op():
    assert repr(Scale(1.0, 1.0)) == "<Scale>"
