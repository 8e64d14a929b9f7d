"""The fused LSTM: agreement with its reference cell, gradient checks, masks, go_backwards,
float32 (saturated gates exact and silent), 1,000 steps without recursion, memory, bad input,
and its CUDA steps (compiled for the CPU here; on a GPU, CuPy against NumPy)."""
import sys

import numpy as np
import pytest

from minidl.functional.recurrent import lstm, lstm_reference
from minidl.gradcheck import gradcheck
from minidl.tensor import Tensor
from tests.minidl.functional.recurrent._helpers import (
    assert_cupy_matches_numpy, assert_fused_equals_reference, assert_kernel_bodies_match_numpy,
    assert_masked_steps_carry_state_and_repeat_output, device_cases, dropout_masks, flat, gradcheck_cases,
    make_inputs, option_cases, ragged_mask)


@pytest.fixture(params=["tanh", "exp"])
def gate_pass(request, monkeypatch):
    """Each of the fused forward's two ways through the four gates (GATE_PASS), whichever this
    CPU would pick."""
    monkeypatch.setattr(sys.modules["minidl.functional.recurrent.lstm"], "GATE_PASS", request.param)
    return request.param


@pytest.mark.parametrize("masked, go_backwards, zero_output_for_mask", option_cases("lstm"))
def test_lstm_equals_reference_in_value_and_every_gradient(masked, go_backwards, zero_output_for_mask, gate_pass):
    assert_fused_equals_reference("lstm", make_inputs("lstm"), mask=ragged_mask() if masked else None,
                                  go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask)


def test_lstm_equals_reference_without_bias(gate_pass):
    assert_fused_equals_reference("lstm", make_inputs("lstm", bias=False), rtol=1e-7, mask=ragged_mask())


@pytest.mark.parametrize("activation, recurrent_activation", [("relu", "sigmoid"), ("tanh", "tanh")],
                         ids=["lstm-relu-sigmoid", "lstm-tanh-tanh"])
def test_lstm_equals_reference_for_other_activations(activation, recurrent_activation):
    assert_fused_equals_reference("lstm", make_inputs("lstm"), rtol=1e-7, activation=activation,
                                  recurrent_activation=recurrent_activation)


@pytest.mark.parametrize("batch, steps, masked, go_backwards", gradcheck_cases("lstm"))
def test_lstm_gradcheck(batch, steps, masked, go_backwards):
    arrays = make_inputs("lstm", batch=batch, steps=steps, features=2, seed=batch + steps)
    mask = ragged_mask(batch, steps) if masked else None
    gradcheck(lambda *xs: flat(lstm(*xs, mask=mask, go_backwards=go_backwards)), arrays)


def test_lstm_gradcheck_zero_output_for_mask_and_fully_masked_row():
    mask = ragged_mask()
    mask[2] = False  # a sequence with no valid step at all keeps its initial state
    arrays = make_inputs("lstm", features=2)
    gradcheck(lambda *xs: flat(lstm(*xs, mask=mask, zero_output_for_mask=True)), arrays)


def test_lstm_masked_steps_carry_state_and_repeat_output():
    assert_masked_steps_carry_state_and_repeat_output("lstm")


def test_lstm_go_backwards_processes_steps_last_to_first():
    arrays = make_inputs("lstm")
    x = arrays[0]
    forward, h, c = lstm(*[Tensor(a) for a in [x[:, ::-1].copy()] + arrays[1:]])
    backward, h_b, c_b = lstm(*[Tensor(a) for a in arrays], go_backwards=True)
    np.testing.assert_allclose(backward.data, forward.data, atol=1e-12)  # outputs in processed order
    np.testing.assert_allclose(h_b.data, h.data, atol=1e-12)


def test_lstm_saturated_gates_are_exact_and_warn_nothing(recwarn, gate_pass):
    # through exp, σ(z) = 1/(1 + e^(-z)) and tanh(z) = 2σ(2z) - 1: pre-activations far past
    # float32's exp range (e^(-z) = inf) must give the exact limits 0 and ±1, silently; so must
    # σ(z) = ½·tanh(½z) + ½
    arrays = make_inputs("lstm", dtype=np.float32)
    arrays[3] = arrays[3] * 1e3  # kernel: |z| in the thousands
    outputs, h, c = lstm(*[Tensor(a) for a in arrays])
    ref_outputs, ref_h, ref_c = lstm_reference(*[Tensor(a.astype(np.float64)) for a in arrays])
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert np.isfinite(outputs.data).all() and np.isfinite(c.data).all()
    np.testing.assert_allclose(outputs.data, ref_outputs.data, atol=1e-5)
    np.testing.assert_allclose(c.data, ref_c.data, rtol=1e-5, atol=1e-4)


def test_lstm_float32_matches_float64_reference(gate_pass):
    # float32 gates through exp or tanh lose at most a few float32 ulps against the float64 reference
    arrays = make_inputs("lstm", steps=20)
    outputs, h, c = lstm(*[Tensor(a.astype(np.float32)) for a in arrays])
    ref_outputs, ref_h, ref_c = lstm_reference(*[Tensor(a) for a in arrays])
    np.testing.assert_allclose(outputs.data, ref_outputs.data, atol=2e-6)
    np.testing.assert_allclose(c.data, ref_c.data, atol=2e-6)


def test_lstm_with_dropout_masks_equals_reference_through_either_gate_pass(gate_pass):
    # the dropped products are one GEMM per gate on [h ⊙ n_g; x_t ⊙ m_g; 1]
    input_masks, recurrent_masks = dropout_masks("lstm")
    assert_fused_equals_reference("lstm", make_inputs("lstm"), mask=ragged_mask(), input_masks=input_masks,
                                  recurrent_masks=recurrent_masks)


@pytest.mark.parametrize("needs", [(False, False, False, True, True, True), (True, False, False, False, True, False),
                                   (False, True, True, False, False, True), (False, False, False, False, False, True)],
                         ids=["weights", "x-and-recurrent-kernel", "states-and-bias", "bias-only"])
def test_lstm_gradients_of_some_inputs_only(needs, gate_pass):
    # ∂Θ is one GEMM for all weights; each input gets its gradient only where it asked for one
    arrays = make_inputs("lstm")
    weights = [np.random.default_rng(3).normal(size=shape) for shape in [(3, 5, 3), (3, 3), (3, 3)]]
    grads = []
    for op in (lstm, lstm_reference):
        tensors = [Tensor(a, requires_grad=n) for a, n in zip(arrays, needs)]
        outputs, h, c = op(*tensors)
        loss = (outputs * Tensor(weights[0])).sum() + (h * Tensor(weights[1])).sum() + (c * Tensor(weights[2])).sum()
        loss.backward()
        grads.append([t.grad for t in tensors])
    for position, (got, expected, needed) in enumerate(zip(*grads, needs)):
        if needed:
            np.testing.assert_allclose(got, expected, atol=1e-10, err_msg=f"input {position}")
        else:
            assert got is None, f"input {position} needs no gradient"


def test_lstm_float32_stays_float32():
    arrays = make_inputs("lstm", dtype=np.float32)
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    outputs, h, c = lstm(*tensors, mask=ragged_mask())
    assert outputs.dtype == h.dtype == c.dtype == np.float32
    (outputs.sum() + h.sum() + c.sum()).backward()
    assert all(t.grad.dtype == np.float32 for t in tensors)


@pytest.mark.parametrize("use_reference", [False, True], ids=["lstm", "lstm_reference"])
def test_lstm_unrolled_over_1000_steps_backpropagates_without_recursion(use_reference):
    fn = lstm_reference if use_reference else lstm
    arrays = make_inputs("lstm", batch=2, steps=1000, features=2)
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(min(limit, 1000))  # far fewer frames than the graph is deep
    try:
        outputs, h, c = fn(*tensors)
        outputs.sum().backward()
    finally:
        sys.setrecursionlimit(limit)
    assert all(t.grad is not None and np.isfinite(t.grad).all() for t in tensors)


def test_lstm_graph_memory_is_freed_after_backward():
    tensors = [Tensor(a, requires_grad=True) for a in make_inputs("lstm")]
    outputs, h, c = lstm(*tensors)
    function = outputs.creator
    assert function.HX is not None
    outputs.sum().backward()
    assert function.released and not hasattr(function, "HX")  # saved buffers dropped


@pytest.mark.parametrize("bad, message", [
    (lambda a: [a[0][0]] + a[1:], r"lstm: expected x of shape \(batch, steps, features\), got shape \(5, 4\)"),
    (lambda a: [a[0], a[1][:2]] + a[2:], r"lstm: expected h0 of shape \(3, 3\) .* got shape \(2, 3\)"),
    (lambda a: a[:3] + [a[3][:2]] + a[4:], r"lstm: expected kernel of shape \(4, 12\) .* got shape \(2, 12\)"),
], ids=["lstm-x", "lstm-h0", "lstm-kernel"])
def test_lstm_bad_shapes_name_expected_and_received(bad, message):
    with pytest.raises(ValueError, match=message):
        lstm(*bad(make_inputs("lstm")))


def test_lstm_cuda_steps_compiled_for_the_cpu_match_numpy(tmp_path, monkeypatch):
    assert_kernel_bodies_match_numpy("lstm", tmp_path, monkeypatch)


@pytest.mark.cupy
@pytest.mark.parametrize("masked, go_backwards", device_cases("lstm"))
def test_lstm_cupy_matches_numpy(masked, go_backwards):
    assert_cupy_matches_numpy("lstm", masked, go_backwards)
