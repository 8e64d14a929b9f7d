"""The fused GRU (reset after): agreement with its reference cell, gradient checks, masks,
no graph under no_grad, and its CUDA steps (compiled for the CPU here; on a GPU, CuPy against
NumPy)."""
import pytest

from minidl.function import no_grad
from minidl.functional.recurrent import gru
from minidl.gradcheck import gradcheck
from minidl.tensor import Tensor
from tests.minidl.functional.recurrent._helpers import (
    assert_cupy_matches_numpy, assert_fused_equals_reference, assert_kernel_bodies_match_numpy,
    assert_masked_steps_carry_state_and_repeat_output, device_cases, flat, gradcheck_cases,
    make_inputs, option_cases, ragged_mask)


@pytest.mark.parametrize("masked, go_backwards, zero_output_for_mask", option_cases("gru"))
def test_gru_equals_reference_in_value_and_every_gradient(masked, go_backwards, zero_output_for_mask):
    assert_fused_equals_reference("gru", make_inputs("gru"), mask=ragged_mask() if masked else None,
                                  go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask)


def test_gru_equals_reference_without_bias():
    assert_fused_equals_reference("gru", make_inputs("gru", bias=False), rtol=1e-7, mask=ragged_mask())


def test_gru_equals_reference_for_other_activations():
    assert_fused_equals_reference("gru", make_inputs("gru"), rtol=1e-7, activation="linear",
                                  recurrent_activation="sigmoid")


@pytest.mark.parametrize("batch, steps, masked, go_backwards", gradcheck_cases("gru"))
def test_gru_gradcheck(batch, steps, masked, go_backwards):
    arrays = make_inputs("gru", batch=batch, steps=steps, features=2, seed=batch + steps)
    mask = ragged_mask(batch, steps) if masked else None
    gradcheck(lambda *xs: flat(gru(*xs, mask=mask, go_backwards=go_backwards)), arrays)


def test_gru_gradcheck_zero_output_for_mask_and_fully_masked_row():
    mask = ragged_mask()
    mask[2] = False  # a sequence with no valid step at all keeps its initial state
    arrays = make_inputs("gru", features=2)
    gradcheck(lambda *xs: flat(gru(*xs, mask=mask, zero_output_for_mask=True)), arrays)


def test_gru_masked_steps_carry_state_and_repeat_output():
    assert_masked_steps_carry_state_and_repeat_output("gru")


def test_gru_no_graph_under_no_grad():
    tensors = [Tensor(a, requires_grad=True) for a in make_inputs("gru")]
    with no_grad():
        outputs, h = gru(*tensors)
    assert outputs.creator is None


def test_gru_cuda_steps_compiled_for_the_cpu_match_numpy(tmp_path, monkeypatch):
    assert_kernel_bodies_match_numpy("gru", tmp_path, monkeypatch)


@pytest.mark.cupy
@pytest.mark.parametrize("masked, go_backwards", device_cases("gru"))
def test_gru_cupy_matches_numpy(masked, go_backwards):
    assert_cupy_matches_numpy("gru", masked, go_backwards)
