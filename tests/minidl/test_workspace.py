"""The workspace pool: reuse, the byte limit, refusals, and fused ops that stay exact while reusing
buffers between calls."""
import numpy as np
import pytest

from minidl import workspace
from minidl.functional.recurrent import gru, lstm
from minidl.functional.recurrent_reference import gru_reference, lstm_reference
from minidl.tensor import Tensor


@pytest.fixture(autouse=True)
def empty_pool():
    workspace.clear()
    yield
    workspace.clear()


def test_a_released_array_is_handed_out_again_for_its_shape_and_dtype_only():
    first = workspace.empty(np, (3, 4), np.float32)
    workspace.release(first)
    assert workspace.held_bytes() == first.nbytes
    assert workspace.empty(np, (3, 4), np.float64) is not first
    assert workspace.empty(np, (4, 3), np.float32) is not first
    assert workspace.empty(np, (3, 4), np.float32) is first
    assert workspace.held_bytes() == 0
    assert workspace.empty(np, (3, 4), np.float32) is not first  # handed out once only


def test_the_pool_drops_its_oldest_arrays_past_the_limit(monkeypatch):
    monkeypatch.setattr(workspace, "LIMIT_BYTES", 1000)
    old, new = np.empty(100, np.float32), np.empty(100, np.float32)  # 400 bytes each
    newest = np.empty(50, np.float64)
    workspace.release(old)
    workspace.release(new)
    workspace.release(newest)
    assert workspace.held_bytes() == 800
    assert workspace.empty(np, (100,), np.float32) is new
    assert workspace.empty(np, (100,), np.float32) is not old
    assert workspace.empty(np, (50,), np.float64) is newest


def test_views_and_double_releases_are_refused():
    base = np.empty((4, 4))
    with pytest.raises(ValueError, match="owns its memory"):
        workspace.release(base[1:])
    workspace.release(base)
    with pytest.raises(ValueError, match="released twice"):
        workspace.release(base)


@pytest.mark.parametrize("fused, reference, states, gates", [(lstm, lstm_reference, 2, 4), (gru, gru_reference, 1, 3)])
def test_two_live_calls_and_reused_buffers_keep_every_gradient_exact(fused, reference, states, gates):
    """Two calls of the same shape are alive at once (each holds its buffers until backward), then
    a third runs on buffers the first two gave back: all must equal the reference cells."""
    rng = np.random.default_rng(0)
    units, batch, steps, features = 3, 2, 4, 3
    bias_shape = (gates * units,) if states == 2 else (2, gates * units)
    shapes = [(batch, steps, features)] + [(batch, units)] * states + [
        (features, gates * units), (units, gates * units), bias_shape]
    calls = [[rng.normal(size=shape) for shape in shapes] for _ in range(3)]

    def backward(out, tensors):
        (out[0].sum() + out[1].sum()).backward()
        return [out[0].data.copy()] + [t.grad.copy() for t in tensors]

    tensors = [[Tensor(a.copy(), requires_grad=True) for a in arrays] for arrays in calls]
    first, second = fused(*tensors[0]), fused(*tensors[1])  # both alive, each with its own buffers
    got = [None, backward(second, tensors[1]), None]
    got[0] = backward(first, tensors[0])
    assert workspace.held_bytes() > 0  # the calls gave their buffers back
    got[2] = backward(fused(*tensors[2]), tensors[2])  # runs on the buffers given back
    for arrays, got_call in zip(calls, got):
        reference_tensors = [Tensor(a.copy(), requires_grad=True) for a in arrays]
        expected = backward(reference(*reference_tensors), reference_tensors)
        for g, e in zip(got_call, expected):
            np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-10)
