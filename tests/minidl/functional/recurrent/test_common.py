"""What the three fused recurrent ops share: which activations fuse, the boundary checks that
name the op, what was expected and what came, the rounding that keeps ∂z out of the
subnormal range, and the two layout copies (side_by_side, transposed)."""
import importlib

import numpy as np
import pytest

import minidl.functional as F
from minidl.functional.recurrent import can_fuse, gru, simple_rnn
from minidl.functional.recurrent._common import SubnormalFlush, side_by_side, transposed
from minidl.tensor import Tensor
from tests.minidl.functional.recurrent._helpers import OPS, UNITS, make_inputs


def test_can_fuse_knows_names_and_minidl_functions_only():
    assert can_fuse("tanh", F.sigmoid, None, "relu", "linear")
    assert not can_fuse("tanh", "softmax")
    assert not can_fuse(lambda a: F.tanh(a))  # any other callable goes to the reference cell


def test_bad_mask_shape_and_unknown_activation():
    with pytest.raises(ValueError, match=r"gru: expected a mask of shape \(batch, steps\) = \(3, 5\), got shape \(3, 4\)"):
        gru(*make_inputs("gru"), mask=np.ones((3, 4), bool))
    with pytest.raises(ValueError, match="simple_rnn: the fused op supports activation in"):
        simple_rnn(*make_inputs("simple_rnn"), activation="softmax")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_subnormal_flush_rounds_only_near_zero(dtype):
    finfo = np.finfo(dtype)
    tiny, shift = finfo.tiny, 2 * finfo.tiny / finfo.eps  # s, 2^-102 in float32
    guard = SubnormalFlush(np, dtype)
    subnormal = np.array([finfo.smallest_subnormal, -tiny / 3, tiny * 0.6, -tiny * 0.7], dtype=dtype)
    large = np.array([1.0, -3e-5, 4 * shift / finfo.eps, -4 * shift / finfo.eps * (1 + finfo.eps)], dtype=dtype)
    middle = np.array([tiny * 1.5, -tiny * 1e6, 2 * shift / finfo.eps * (1 + finfo.eps),  # a tie: one ulp
                       2 * shift - shift * finfo.eps / 2], dtype=dtype)  # just below a power of two
    grad = np.concatenate([subnormal, large, middle])
    before = grad.copy()
    guard.flush(grad)
    np.testing.assert_array_equal(grad, before)  # off until a check turns it on
    guard.check(0, np.full((3, 2), 1e-3, dtype=dtype))
    assert not guard.on
    guard.check(1, np.full((3, 2), 1e-30 if dtype == np.float32 else 1e-200, dtype=dtype))
    assert not guard.on  # checked every CHECK_EVERY steps only
    states = np.ones((3, 3), dtype=dtype)
    states[:, 2] = 0  # a column of zeros (a padded sequence) does not count
    guard.check(SubnormalFlush.CHECK_EVERY, states)
    assert not guard.on
    states[:, 1] = tiny  # one column of the batch has decayed
    guard.check(2 * SubnormalFlush.CHECK_EVERY, states)
    assert guard.on
    guard.flush(grad)
    assert np.all(np.isin(grad[:4], [0, -tiny]))  # no subnormal is left
    np.testing.assert_array_equal(grad[4:8], before[4:8])  # |∂z| ≥ 4·s/eps: unchanged
    ulp = np.spacing(np.abs(before[8:]))
    assert np.all(np.abs(grad[8:] - before[8:]) <= np.maximum(tiny, ulp))
    assert grad[10] != before[10]  # the bounds are reached: this one moved


def test_subnormal_flush_does_nothing_off_numpy():
    guard = SubnormalFlush(object(), np.float32)  # any array module but NumPy (CuPy on a GPU)
    guard.check(0, np.zeros((2, 2), dtype=np.float32))
    assert not guard.on


def decaying_inputs(name: str) -> list:
    """float32 inputs of op ``name`` over 80 steps whose ∂h shrinks by about 2^-3 to 2^-6 a step
    when only the last state is in the loss: a weak recurrent kernel, and for the gated cells a
    gate that passes little of ∂h (or ∂c) straight back."""
    arrays = make_inputs(name, steps=80, dtype=np.float32)
    recurrent_kernel, bias = (4, 5) if name == "lstm" else (3, 4)  # after x and the states
    arrays[recurrent_kernel] *= 0.05
    if name == "lstm":
        arrays[bias][UNITS:2 * UNITS] = -2.0  # the forget gate (Keras order i, f, c, o)
    elif name == "gru":
        arrays[bias][:, :UNITS] = -2.0  # the update gate z, input and recurrent bias
    elif name == "gru_reset_before":
        arrays[bias][:UNITS] = -4.0
    return arrays


@pytest.mark.parametrize("name", ["simple_rnn", "lstm", "gru", "gru_reset_before"])
def test_gradient_decayed_past_float32_range_reaches_no_gemm_subnormal(name, monkeypatch):
    # without SubnormalFlush a dozen or more of the 80 steps hand the GEMM a subnormal ∂z (the
    # slow path of the CPU); with it none does, and the gradients still match float64's
    module = importlib.import_module(f"minidl.functional.recurrent.{name}")  # the op's own file
    seen, real_state_grad = [], module.state_grad

    def spying_state_grad(xp, U, grad, *rest):
        seen.append(grad.copy())
        return real_state_grad(xp, U, grad, *rest)
    monkeypatch.setattr(module, "state_grad", spying_state_grad)
    fused, reference = OPS[name][:2]
    arrays = decaying_inputs(name)
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    last = fused(*tensors)[1]
    last.sum().backward()
    tiny = np.finfo(np.float32).tiny
    assert len(seen) == 80 and np.all(seen[-1] == 0)  # what reached step 0 was below any float32
    assert not [t for t, grad in enumerate(seen) if np.any((grad != 0) & (np.abs(grad) < tiny))]
    expected = [Tensor(a.astype(np.float64), requires_grad=True) for a in arrays]
    reference(*expected)[1].sum().backward()
    for got, want in zip(tensors, expected):
        np.testing.assert_allclose(got.grad, want.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5, 12, 3), (1, 4, 1), (3, 2, 7)])
def test_side_by_side_puts_every_step_beside_the_last(dtype, shape):
    grad_z = np.random.default_rng(0).normal(size=shape).astype(dtype)
    out = side_by_side(np, grad_z)
    steps, width, batch = shape
    assert out.shape == (width, steps * batch) and out.flags.c_contiguous
    for t in range(steps):   # columns t·batch .. (t+1)·batch - 1 hold step t
        np.testing.assert_array_equal(out[:, t * batch:(t + 1) * batch], grad_z[t])
    strided = side_by_side(np, grad_z[:, ::-1])   # not contiguous: the plain copy
    np.testing.assert_array_equal(strided[:, :batch], grad_z[0, ::-1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(142, 512), (1, 5), (17, 1), (33, 40)])
def test_transposed_is_a_contiguous_copy_of_the_transpose(dtype, shape):
    a = np.random.default_rng(1).normal(size=shape).astype(dtype)
    out = transposed(np, a)
    assert out.flags.c_contiguous and not np.shares_memory(out, a)
    np.testing.assert_array_equal(out, a.T)
