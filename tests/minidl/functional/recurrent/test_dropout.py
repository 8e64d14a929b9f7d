"""Per-gate dropout masks fixed over the steps (recurrent_dropout, Gal & Ghahramani 2016) in all
fused recurrent ops: agreement with the reference cells (which compute the gates one by one, as
Keras does), gradient checks, what a mask of ones and a dropped unit do, bad shapes, and the
CUDA steps with masks (compiled for the CPU)."""
import numpy as np
import pytest

from minidl.functional.recurrent._dropout import step_product
from minidl.gradcheck import gradcheck
from minidl.tensor import Tensor
from tests.minidl.functional.recurrent._helpers import (OPS, UNITS, assert_cupy_matches_numpy,
                                                        assert_fused_equals_reference,
                                                        assert_kernel_bodies_match_numpy, dropout_masks, flat,
                                                        make_inputs, ragged_mask)

WHICH = {"both": ("input_masks", "recurrent_masks"), "input": ("input_masks",),
         "recurrent": ("recurrent_masks",)}


def chosen_masks(name, which, **sizes):
    input_masks, recurrent_masks = dropout_masks(name, **sizes)
    given = {"input_masks": input_masks, "recurrent_masks": recurrent_masks}
    return {key: given[key] for key in WHICH[which]}


@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked-backwards"])
@pytest.mark.parametrize("which", list(WHICH))
@pytest.mark.parametrize("name", list(OPS))
def test_dropout_masks_fused_equals_reference_in_value_and_every_gradient(name, which, masked):
    assert_fused_equals_reference(name, make_inputs(name), rtol=1e-12, mask=ragged_mask() if masked else None,
                                  go_backwards=masked, **chosen_masks(name, which))


@pytest.mark.parametrize("name", list(OPS))
def test_dropout_masks_gradcheck(name):
    masks = chosen_masks(name, "both", batch=2, features=2)
    mask = ragged_mask(2, 4)
    gradcheck(lambda *xs: flat(OPS[name][0](*xs, mask=mask, **masks)),
              make_inputs(name, batch=2, steps=4, features=2, seed=9))


@pytest.mark.parametrize("name", list(OPS))
def test_masks_of_ones_are_no_dropout_and_a_dropped_unit_never_feeds_its_gate(name):
    fused, _, _, gates, _ = OPS[name]
    arrays = make_inputs(name)
    plain = flat(fused(*arrays)).data
    ones = {"input_masks": np.ones((gates, 3, 4)), "recurrent_masks": np.ones((gates, 3, UNITS))}
    np.testing.assert_allclose(flat(fused(*arrays, **ones)).data, plain, atol=1e-14)
    # input feature 0 dropped for every gate of sample 0: its values there change nothing
    input_masks = np.ones((gates, 3, 4))
    input_masks[:, 0, 0] = 0
    changed = [a.copy() for a in arrays]
    changed[0][0, :, 0] += 5.0
    np.testing.assert_allclose(flat(fused(*changed, input_masks=input_masks)).data,
                               flat(fused(*arrays, input_masks=input_masks)).data, atol=1e-14)
    if gates == 1:
        return
    # dropped for one gate only, it does matter: the masks are per gate
    input_masks[1:, 0, 0] = 1
    assert np.abs(flat(fused(*changed, input_masks=input_masks)).data
                  - flat(fused(*arrays, input_masks=input_masks)).data).max() > 1e-3


def test_dropout_masks_wrong_shape_is_named():
    fused = OPS["lstm"][0]
    with pytest.raises(ValueError, match=r"lstm: expected recurrent_masks of shape \(gates, batch, n\) = "
                                         r"\(4, 3, 3\), got shape \(3, 3, 3\)"):
        fused(*make_inputs("lstm"), recurrent_masks=np.ones((3, 3, UNITS)))
    with pytest.raises(ValueError, match=r"gru: expected input_masks of shape .* = \(3, 3, 4\), got shape \(3, 4\)"):
        OPS["gru"][0](*make_inputs("gru"), input_masks=np.ones((3, 4)))


def test_dropout_masks_get_no_gradient_and_may_be_tensors():
    fused = OPS["gru"][0]
    input_masks, recurrent_masks = dropout_masks("gru")
    as_tensors = {"input_masks": Tensor(input_masks), "recurrent_masks": Tensor(recurrent_masks)}
    as_arrays = {"input_masks": input_masks, "recurrent_masks": recurrent_masks}
    np.testing.assert_array_equal(flat(fused(*make_inputs("gru"), **as_tensors)).data,
                                  flat(fused(*make_inputs("gru"), **as_arrays)).data)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_cuda_steps_with_dropout_masks_compiled_for_the_cpu_match_numpy(name, tmp_path, monkeypatch):
    # the masks act in the products around the kernels, which the CuPy path shares with NumPy
    input_masks, recurrent_masks = dropout_masks(name)
    assert_kernel_bodies_match_numpy(name, tmp_path, monkeypatch, input_masks=input_masks,
                                     recurrent_masks=recurrent_masks)


@pytest.mark.cupy
@pytest.mark.parametrize("name", list(OPS))
def test_dropout_masks_cupy_matches_numpy(name):
    input_masks, recurrent_masks = dropout_masks(name)
    assert_cupy_matches_numpy(name, True, False, input_masks=input_masks, recurrent_masks=recurrent_masks)


def test_step_product_writes_a_times_b_into_contiguous_and_strided_outputs():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 5)).astype(np.float32), rng.normal(size=(5, 3)).astype(np.float32)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    out = np.empty((6, 3), np.float32)
    assert step_product(np, a, b, out) is out
    np.testing.assert_allclose(out, expected, rtol=1e-5)
    wide = np.zeros((6, 7), np.float32)
    step_product(np, a, b, wide[:, 2:5])   # not C-contiguous: matmul's path
    np.testing.assert_allclose(wide[:, 2:5], expected, rtol=1e-5)
    assert not wide[:, :2].any() and not wide[:, 5:].any()


def test_step_product_casts_like_matmul_when_the_dtypes_differ():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 5)), rng.normal(size=(5, 3))   # float64 into a float32 out
    out = np.empty((4, 3), np.float32)
    step_product(np, a, b, out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-6)
    back = np.empty((4, 3), np.float64)   # float32 operands into a float64 out
    step_product(np, a.astype(np.float32), b.astype(np.float32), back)
    np.testing.assert_allclose(back, a.astype(np.float32) @ b.astype(np.float32), rtol=1e-6)


@pytest.mark.parametrize("name", ["lstm", "gru", "simple_rnn"])
def test_a_float64_gradient_reaches_a_float32_recurrent_op_through_its_last_state(name):
    import minidl.functional as F
    from minidl.functional import recurrent
    rng = np.random.default_rng(2)
    gates = {"lstm": 4, "gru": 3, "simple_rnn": 1}[name]
    x = Tensor(rng.normal(size=(2, 4, 3)).astype(np.float32))
    state = [Tensor(np.zeros((2, 5), np.float32))] * (2 if name == "lstm" else 1)
    W = Tensor(rng.normal(size=(3, gates * 5)).astype(np.float32), requires_grad=True)
    U = Tensor(rng.normal(size=(5, gates * 5)).astype(np.float32), requires_grad=True)
    outputs = getattr(recurrent, name)(x, *state, W, U)
    F.sum(outputs[1] * Tensor(np.ones((2, 5), np.float64))).backward()   # ValueError from np.dot's out= before
    assert U.grad.shape == (5, gates * 5) and np.isfinite(U.grad).all()
