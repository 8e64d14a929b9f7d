"""The fused GRU in the reset-before form (Cho et al. 2014, Keras' reset_after=False): agreement
with its reference cell, gradient checks, masks, and no graph under no_grad."""
import numpy as np
import pytest

from minidl.function import no_grad
from minidl.functional.recurrent import GRUResetBeforeFunction, gru, gru_reference
from minidl.gradcheck import gradcheck
from minidl.tensor import Tensor
from tests.minidl.functional.recurrent._helpers import (
    assert_fused_equals_reference, assert_masked_steps_carry_state_and_repeat_output, flat, gradcheck_cases,
    make_inputs, option_cases, ragged_mask)

NAME = "gru_reset_before"


@pytest.mark.parametrize("masked, go_backwards, zero_output_for_mask", option_cases(NAME))
def test_gru_reset_before_equals_reference_in_value_and_every_gradient(masked, go_backwards,
                                                                      zero_output_for_mask):
    assert_fused_equals_reference(NAME, make_inputs(NAME), mask=ragged_mask() if masked else None,
                                  go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask)


def test_gru_reset_before_equals_reference_without_bias_and_for_other_activations():
    assert_fused_equals_reference(NAME, make_inputs(NAME, bias=False), rtol=1e-7, mask=ragged_mask())
    assert_fused_equals_reference(NAME, make_inputs(NAME), rtol=1e-7, activation="relu",
                                  recurrent_activation="sigmoid")


@pytest.mark.parametrize("batch, steps, masked, go_backwards", gradcheck_cases(NAME))
def test_gru_reset_before_gradcheck(batch, steps, masked, go_backwards):
    arrays = make_inputs(NAME, batch=batch, steps=steps, features=2, seed=batch + steps)
    mask = ragged_mask(batch, steps) if masked else None
    outputs, _ = gru(*[Tensor(a, requires_grad=True) for a in arrays], mask=mask, reset_after=False)
    assert isinstance(outputs.creator, GRUResetBeforeFunction)  # the fused op is what gets checked
    gradcheck(lambda *xs: flat(gru(*xs, mask=mask, go_backwards=go_backwards, reset_after=False)), arrays)


def test_gru_reset_before_masked_steps_carry_state_and_repeat_output():
    assert_masked_steps_carry_state_and_repeat_output(NAME)


def test_gru_reset_before_differs_from_reset_after_by_where_the_reset_gate_acts():
    """One step from h0 with the same weights: reset before scales h ahead of U_h, reset after
    scales h·U_h; the two agree only where r = 1, which a large reset bias forces."""
    x, h0, W, U, b = make_inputs(NAME, steps=1)
    before, _ = gru(x, h0, W, U, b, reset_after=False)
    after, _ = gru(x, h0, W, U, np.stack([b, np.zeros_like(b)]))
    assert np.abs(before.data - after.data).max() > 1e-3
    b = b.copy()
    b[3:6] = 40.0  # σ(40) = 1 in float64 to 1e-17: r = 1
    before, _ = gru(x, h0, W, U, b, reset_after=False)
    after, _ = gru(x, h0, W, U, np.stack([b, np.zeros_like(b)]))
    np.testing.assert_allclose(before.data, after.data, atol=1e-12)


def test_gru_reset_before_wants_a_bias_of_3_units():
    x, h0, W, U, b = make_inputs(NAME)
    with pytest.raises(ValueError, match=r"gru: expected bias of shape \(9,\) .* got shape \(2, 9\)"):
        gru(x, h0, W, U, np.stack([b, b]), reset_after=False)


def test_gru_reset_before_no_graph_under_no_grad():
    tensors = [Tensor(a, requires_grad=True) for a in make_inputs(NAME)]
    with no_grad():
        outputs, h = gru(*tensors, reset_after=False)
    assert outputs.creator is None
    reference, _ = gru_reference(*make_inputs(NAME), reset_after=False)
    np.testing.assert_allclose(outputs.data, reference.data, atol=1e-12)
