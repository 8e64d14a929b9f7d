"""The workspace pool: reuse, the byte limit, refusals, and fused ops that stay exact while reusing
buffers between calls."""
import numpy as np
import pytest

from minidl import workspace
from minidl.function import no_grad
from minidl.functional.conv import conv2d
from minidl.functional.conv_pool import conv2d_max_pool
from minidl.functional.recurrent import (gru, gru_reference, lstm, lstm_reference, simple_rnn,
                                         simple_rnn_reference)
from minidl.tensor import Tensor


@pytest.fixture(autouse=True)
def empty_pool():
    workspace.clear()
    yield
    workspace.clear()


def same_buffer(a, b):
    return a.ctypes.data == b.ctypes.data and a.nbytes == b.nbytes


def test_a_released_buffer_is_handed_out_again_for_its_size_and_dtype_only():
    first = workspace.empty(np, (3, 4), np.float32)
    workspace.release(first)
    assert workspace.held_bytes() == first.nbytes
    assert not same_buffer(workspace.empty(np, (3, 4), np.float64), first)
    assert not same_buffer(workspace.empty(np, (5, 2), np.float32), first)
    again = workspace.empty(np, (2, 6), np.float32)  # any shape of the same size
    assert same_buffer(again, first) and again.shape == (2, 6) and again.flags.c_contiguous
    assert workspace.held_bytes() == 0
    assert not same_buffer(workspace.empty(np, (3, 4), np.float32), first)  # handed out once only


def test_the_pool_drops_its_oldest_buffers_past_the_limit(monkeypatch):
    monkeypatch.setattr(workspace, "LIMIT_BYTES", 1000)
    old, new = np.empty(100, np.float32), np.empty(100, np.float32)  # 400 bytes each
    newest = np.empty((5, 10), np.float64)
    workspace.release(old)
    workspace.release(new)
    workspace.release(newest)
    assert workspace.held_bytes() == 800
    assert same_buffer(workspace.empty(np, (100,), np.float32), new)
    assert not same_buffer(workspace.empty(np, (100,), np.float32), old)
    assert same_buffer(workspace.empty(np, (50,), np.float64), newest)


def test_partial_views_and_double_releases_are_refused():
    base = np.empty((4, 4))
    with pytest.raises(ValueError, match="whole buffer"):
        workspace.release(base[1:])
    with pytest.raises(ValueError, match="whole buffer"):
        workspace.release(base[:, ::2])
    workspace.release(base.T)  # a whole buffer, transposed
    with pytest.raises(ValueError, match="released twice"):
        workspace.release(base)


@pytest.mark.parametrize("fused, reference, states, gates, bias_shape", [
    (lstm, lstm_reference, 2, 4, (12,)), (gru, gru_reference, 1, 3, (2, 9)),
    (simple_rnn, simple_rnn_reference, 1, 1, (3,))])
def test_two_live_calls_and_reused_buffers_keep_every_gradient_exact(fused, reference, states, gates, bias_shape):
    """Two calls of the same shape are alive at once (each holds its buffers until backward), then
    a third runs on buffers the first two gave back: all must equal the reference cells."""
    rng = np.random.default_rng(0)
    units, batch, steps, features = 3, 2, 4, 3
    shapes = [(batch, steps, features)] + [(batch, units)] * states + [
        (features, gates * units), (units, gates * units), bias_shape]
    calls = [[rng.normal(size=shape) for shape in shapes] for _ in range(3)]

    def backward(out, tensors):
        (out[0].sum() + out[-1].sum()).backward()
        return [out[0].data.copy()] + [t.grad.copy() for t in tensors]

    tensors = [[Tensor(a.copy(), requires_grad=True) for a in arrays] for arrays in calls]
    first, second = fused(*tensors[0]), fused(*tensors[1])  # both alive, each with its own buffers
    got = [None, backward(second, tensors[1]), None]
    got[0] = backward(first, tensors[0])
    assert workspace.held_bytes() > 0  # the calls gave their buffers back
    with no_grad():  # nothing will come back for this call: forward returns its buffers at once
        held = workspace.held_bytes()
        inference = fused(*[Tensor(a) for a in calls[2]])[0].data.copy()
        assert workspace.held_bytes() == held
    got[2] = backward(fused(*tensors[2]), tensors[2])  # runs on the buffers given back
    np.testing.assert_allclose(inference, got[2][0], rtol=1e-12, atol=1e-12)
    for arrays, got_call in zip(calls, got):
        reference_tensors = [Tensor(a.copy(), requires_grad=True) for a in arrays]
        expected = backward(reference(*reference_tensors), reference_tensors)
        for g, e in zip(got_call, expected):
            np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-10)


def _conv_pool(rng):
    return [rng.normal(size=(2, 6, 6, 2)), rng.normal(size=(3, 3, 2, 3)), rng.normal(size=3)], \
        lambda x, W, b: conv2d_max_pool(x, W, b, relu=True)


def _conv(rng):
    return [rng.normal(size=(2, 6, 6, 2)), rng.normal(size=(3, 3, 2, 3)), rng.normal(size=3)], \
        lambda x, W, b: conv2d(x, W, b, padding="same", relu=True)


def _recurrent(fused, states, gates, bias_shape):
    def make(rng):
        units, batch, steps, features = 3, 2, 4, 3
        shapes = [(batch, steps, features)] + [(batch, units)] * states + [
            (features, gates * units), (units, gates * units), bias_shape]
        return [rng.normal(size=shape) for shape in shapes], lambda *a: fused(*a)[0]
    return make


@pytest.mark.parametrize("make", [_conv, _conv_pool, _recurrent(lstm, 2, 4, (12,)),
                                  _recurrent(gru, 1, 3, (2, 9)), _recurrent(simple_rnn, 1, 1, (3,))],
                         ids=["conv2d", "conv2d_max_pool", "lstm", "gru", "simple_rnn"])
def test_a_graph_kept_for_a_second_backward_keeps_its_buffers(make):
    """backward(retain_graph=True) gives no buffer back (workspace.keeping), so a second backward
    reads what forward saved, even after another call of the same shape took the pool's buffers."""
    rng = np.random.default_rng(1)
    arrays, op = make(rng)
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    loss = op(*tensors).sum()
    loss.backward(retain_graph=True)
    first = [t.grad.copy() for t in tensors]
    for t in tensors:
        t.grad = None
    other_arrays, _ = make(rng)   # same shapes, other values: would take any buffer given back
    op(*[Tensor(a, requires_grad=True) for a in other_arrays]).sum().backward()
    loss.backward()
    for got, expected in zip([t.grad for t in tensors], first):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_release_gives_nothing_back_inside_keeping():
    buffer = workspace.empty(np, (4, 4), np.float32)
    with workspace.keeping():
        workspace.release(buffer)
        assert workspace.held_bytes() == 0
    workspace.release(buffer)
    assert workspace.held_bytes() == buffer.nbytes


def test_heap_top_pad_is_set_on_glibc_and_the_environment_can_change_it(monkeypatch):
    """At import minidl keeps freed memory at the top of glibc's heap; MINIDL_MALLOC_TOP_PAD
    overrides the size, and a value that is not a byte count is refused by name."""
    import platform
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        assert workspace.keep_heap_top(workspace.TOP_PAD_BYTES) is False
        return
    assert workspace.keep_heap_top(workspace.TOP_PAD_BYTES) is True
    monkeypatch.setenv("MINIDL_MALLOC_TOP_PAD", "1048576")
    assert workspace.top_pad_from_environment() == 1048576
    monkeypatch.setenv("MINIDL_MALLOC_TOP_PAD", "64MB")
    with pytest.raises(ValueError, match=r"MINIDL_MALLOC_TOP_PAD must be a whole number of bytes.*'64MB'"):
        workspace.top_pad_from_environment()
    monkeypatch.delenv("MINIDL_MALLOC_TOP_PAD")
    assert workspace.top_pad_from_environment() == workspace.TOP_PAD_BYTES


def test_the_heap_setting_also_fixes_the_mmap_threshold(monkeypatch):
    """Setting M_TOP_PAD switches off glibc's dynamic mmap threshold (mallopt(3)); left where it
    happened to be, arrays above it were fresh mmaps, faulted in on every step (5,585 page
    faults a step of the digits CNN, benchmarks/steady.py). keep_heap_top sets both, and says
    False unless glibc took both."""
    calls = []

    class FakeLibc:
        def __init__(self, answers):
            self.answers = answers

        def mallopt(self, option, value):
            calls.append((option, value.value))
            return self.answers.pop(0)

    monkeypatch.setattr(workspace.sys, "platform", "linux")
    monkeypatch.setattr(workspace.ctypes, "CDLL", lambda name: FakeLibc([1, 1]))
    assert workspace.keep_heap_top(1234) is True
    assert calls == [(-2, 1234), (-3, workspace.MMAP_THRESHOLD_BYTES)]   # M_TOP_PAD, M_MMAP_THRESHOLD
    monkeypatch.setattr(workspace.ctypes, "CDLL", lambda name: FakeLibc([1, 0]))
    assert workspace.keep_heap_top(1234) is False


def test_ctc_gives_its_recursion_buffers_back_after_backward():
    """ctc_loss's recursion buffers come from the pool and return to it: held bytes grow by
    them after backward, and without a graph (no_grad) forward hands them back at once."""
    from minidl.functional.ctc import ctc_loss
    rng = np.random.default_rng(0)
    log_probs = rng.normal(size=(2, 6, 4))
    workspace.clear()
    x = Tensor(log_probs, requires_grad=True)
    loss = ctc_loss(x, [[1, 2], [3, 0]], [6, 5], [2, 1])
    assert workspace.held_bytes() == 0
    loss.backward()
    held = workspace.held_bytes()
    assert held > 0
    with no_grad():
        ctc_loss(Tensor(log_probs), [[1, 2], [3, 0]], [6, 5], [2, 1])
    assert workspace.held_bytes() == held
