"""The fused SimpleRNN: agreement with its reference cell, gradient checks, masks, and (on a GPU)
CuPy against NumPy."""
import pytest

from minidl.functional.recurrent import simple_rnn
from minidl.gradcheck import gradcheck
from tests.minidl.functional.recurrent._helpers import (
    assert_cupy_matches_numpy, assert_fused_equals_reference,
    assert_masked_steps_carry_state_and_repeat_output, device_cases, flat, gradcheck_cases,
    make_inputs, option_cases, ragged_mask)


@pytest.mark.parametrize("masked, go_backwards, zero_output_for_mask", option_cases("simple_rnn"))
def test_simple_rnn_equals_reference_in_value_and_every_gradient(masked, go_backwards, zero_output_for_mask):
    assert_fused_equals_reference("simple_rnn", make_inputs("simple_rnn"), mask=ragged_mask() if masked else None,
                                  go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask)


def test_simple_rnn_equals_reference_without_bias():
    assert_fused_equals_reference("simple_rnn", make_inputs("simple_rnn", bias=False), rtol=1e-7,
                                  mask=ragged_mask())


@pytest.mark.parametrize("activation", ["relu", "linear", "sigmoid"], ids=lambda a: f"simple_rnn-{a}")
def test_simple_rnn_equals_reference_for_other_activations(activation):
    assert_fused_equals_reference("simple_rnn", make_inputs("simple_rnn"), rtol=1e-7, activation=activation)


@pytest.mark.parametrize("batch, steps, masked, go_backwards", gradcheck_cases("simple_rnn"))
def test_simple_rnn_gradcheck(batch, steps, masked, go_backwards):
    arrays = make_inputs("simple_rnn", batch=batch, steps=steps, features=2, seed=batch + steps)
    mask = ragged_mask(batch, steps) if masked else None
    gradcheck(lambda *xs: flat(simple_rnn(*xs, mask=mask, go_backwards=go_backwards)), arrays)


def test_simple_rnn_gradcheck_zero_output_for_mask_and_fully_masked_row():
    mask = ragged_mask()
    mask[2] = False  # a sequence with no valid step at all keeps its initial state
    arrays = make_inputs("simple_rnn", features=2)
    gradcheck(lambda *xs: flat(simple_rnn(*xs, mask=mask, zero_output_for_mask=True)), arrays)


def test_simple_rnn_masked_steps_carry_state_and_repeat_output():
    assert_masked_steps_carry_state_and_repeat_output("simple_rnn")


@pytest.mark.cupy
@pytest.mark.parametrize("masked, go_backwards", device_cases("simple_rnn"))
def test_simple_rnn_cupy_matches_numpy(masked, go_backwards):
    assert_cupy_matches_numpy("simple_rnn", masked, go_backwards)
