"""SimpleRNN: the fused op over a whole sequence, and its reference cell in primitive ops.

SimpleRNN has no CuPy kernel of its own: its step is one activation, already a single
elementwise call.
"""
from __future__ import annotations

import minidl.functional as F
from minidl import workspace
from minidl.backend import get_array_module
from minidl.functional.recurrent._common import (RecurrentFunction, SubnormalFlush, activate, check_shapes,
                                                 derivative, fused_activation, mask_array, project_inputs,
                                                 row_sums, side_by_side, state_in, transposed, unroll)
from minidl.functional.recurrent._dropout import gate_products, masks_data, masks_in, recurrent_product, state_grad
from minidl.tensor import Tensor, as_tensor


class SimpleRNNFunction(RecurrentFunction):
    """A fully connected recurrence over a whole sequence (Elman, 1990).

    Forward, at each step t, with x_t (batch, features) and h_{t-1} (batch, units):

        z_t = x_t·W + h_{t-1}·U + b
        h_t = act(z_t)

    Backward (BPTT; ∂h_t gathers the output gradient of step t and ∂h_t from step t + 1):

        ∂z_t     = ∂h_t ⊙ act'(z_t)                (act' from h_t: tanh 1 - h², relu [h > 0])
        ∂h_{t-1} = ∂z_t · Uᵀ                       (one GEMM per step)
        ∂W = Σ_t x_tᵀ·∂z_t,  ∂U = Σ_t h_{t-1}ᵀ·∂z_t,  ∂b = Σ_t Σ_batch ∂z_t,  ∂x_t = ∂z_t·Wᵀ
                                                   (one GEMM each, over all steps at once)

    With dropout masks m (input) and n (recurrent), fixed over the steps (_dropout.py), z_t is
    (x_t ⊙ m)·W + (h_{t-1} ⊙ n)·U + b, and ∂x_t, ∂h_{t-1} are multiplied by m, n once more.

    Inputs: x (batch, steps, features), h0 (batch, u), W (features, u), U (u, u), b (u,) or
    absent. Outputs: y (batch, steps, u) and the last state h (batch, u).
    """

    kernel_position = 2

    def __init__(self, activation: str, mask=None, go_backwards=False, zero_output_for_mask=False,
                 input_masks=None, recurrent_masks=None):
        super().__init__(mask, go_backwards, zero_output_for_mask, input_masks, recurrent_masks)
        self.activation = activation

    def forward(self, x, h0, W, U, b=None):
        xp = get_array_module(x)
        steps = x.shape[1]
        keep = self._keep(xp)
        XT, Z = project_inputs(xp, x, W, self.go_backwards, self.input_masks, b)
        H = xp.empty((steps + 1,) + h0.shape[::-1], dtype=x.dtype)  # hᵀ of every step, h0 first
        H[0] = h0.T
        UT = transposed(xp, U)
        scratch = xp.empty_like(H[0])
        for t in range(steps):
            h = H[t + 1]
            recurrent_product(xp, UT, H[t], h, self.recurrent_masks, scratch)  # (h_{t-1}·U)ᵀ = Uᵀ·h_{t-1}ᵀ
            h += Z[t]
            activate(xp, self.activation, h)
            if keep is not None:  # masked rows carry h_{t-1} through
                xp.copyto(h, H[t], where=self.drop[t])
        workspace.release(Z)  # backward works from H alone
        self.XT, self.H, self.W, self.U, self.keep = XT, H, W, U, keep
        self.has_bias = b is not None
        return self._outputs(xp, H, keep), H[steps].T

    def backward(self, gy, gh_last):
        xp = get_array_module(self.H)
        H, U, keep = self.H, self.U, self.keep
        steps = H.shape[0] - 1
        add_output_grad = self._output_grad(xp, gy, keep)
        gh = xp.zeros_like(H[0]) if gh_last is None else state_in(gh_last)
        grad_z = workspace.empty_like(H[1:])  # ∂z_tᵀ of every step
        passed, scratch = xp.empty_like(gh), xp.empty_like(gh)
        subnormals = SubnormalFlush(xp, H.dtype)
        for t in range(steps - 1, -1, -1):
            add_output_grad(t, gh)
            dz = grad_z[t]
            if keep is not None:  # a masked step hands ∂h_t straight to h_{t-1}
                xp.multiply(gh, self.drop[t], out=passed)
                gh *= keep[t]
            # h_t = act(z_t)
            xp.multiply(gh, derivative(xp, self.activation, H[t + 1], dz), out=dz)
            subnormals.flush(dz)
            # z_t = x_t·W + h_{t-1}·U + b:  ∂h_{t-1}ᵀ = U·∂z_tᵀ
            state_grad(xp, U, dz, gh, self.recurrent_masks, scratch)
            if keep is not None:
                gh += passed
            subnormals.check(steps - 1 - t, gh)  # ∂h_{t-1}
        grad_z_side_by_side = side_by_side(xp, grad_z)
        gx, gW = self._input_grads(xp, self.XT, grad_z_side_by_side, self.W)
        grads = (gx, gh.T if self.needs_input_grad[1] else None, gW,
                 self._recurrent_grad(xp, H, grad_z_side_by_side))
        if self.has_bias:
            grads += (row_sums(xp, grad_z_side_by_side) if self.needs_input_grad[4] else None,)
        workspace.release(grad_z, grad_z_side_by_side)
        return grads


def simple_rnn(x, h0, kernel, recurrent_kernel, bias=None, *, mask=None, go_backwards: bool = False,
               zero_output_for_mask: bool = False, activation="tanh", input_masks=None,
               recurrent_masks=None) -> tuple[Tensor, Tensor]:
    """h_t = act(x_t·W + h_{t-1}·U + b) over a sequence; see SimpleRNNFunction for the math.

    Args:
        x: (batch, steps, features). h0: (batch, units). kernel: (features, units).
        recurrent_kernel: (units, units). bias: (units,) or None.
        mask: optional bool (batch, steps); False steps carry h through (Keras 3 rules).
        go_backwards: process the steps last to first (outputs in that order, as Keras).
        zero_output_for_mask: zero outputs at masked steps instead of repeating the last one.
        activation: "tanh", "sigmoid", "relu" or "linear".
        input_masks: optional dropout mask (1, batch, features) on x_t, the same at every step;
            recurrent_masks: likewise (1, batch, units) on h_{t-1} (see _dropout.py).
    Returns:
        (outputs (batch, steps, units), h (batch, units)).
    Raises:
        ValueError: a shape that does not fit, or an activation the fused op lacks (use
            simple_rnn_reference for those).
    """
    x, h0, kernel, recurrent_kernel = (as_tensor(a) for a in (x, h0, kernel, recurrent_kernel))
    batch, units = x.shape[0], kernel.shape[-1]
    check_shapes("simple_rnn", x, {"h0": (h0, (batch, units))},
                 {"kernel": (kernel, (x.shape[-1], units)),
                  "recurrent_kernel": (recurrent_kernel, (units, units)), "bias": (bias, (units,))}, mask)
    name = fused_activation("simple_rnn", "activation", activation)
    xp = get_array_module(x.data)
    fn = SimpleRNNFunction(name, mask_array(mask), go_backwards, zero_output_for_mask,
                           masks_in(xp, input_masks, "simple_rnn", "input_masks", (1, batch, x.shape[-1]),
                                    x.dtype),
                           masks_in(xp, recurrent_masks, "simple_rnn", "recurrent_masks", (1, batch, units),
                                    x.dtype))
    args = (x, h0, kernel, recurrent_kernel) + (() if bias is None else (bias,))
    return fn.apply(*args)


# --- the reference cell: the same recurrence in primitive ops, which autograd differentiates --------

def simple_rnn_cell(x_t, h, kernel, recurrent_kernel, bias=None, activation=F.tanh, input_masks=None,
                    recurrent_masks=None) -> Tensor:
    """h_t = act(x_t·W + h·U + b), with masks act((x_t ⊙ m)·W + (h ⊙ n)·U + b); x_t (batch,
    features), h (batch, units) -> (batch, units); masks as ``simple_rnn``."""
    z = gate_products(x_t, kernel, input_masks) + gate_products(h, recurrent_kernel, recurrent_masks)
    return activation(z if bias is None else z + bias)


def simple_rnn_reference(x, h0, kernel, recurrent_kernel, bias=None, *, mask=None, go_backwards=False,
                         zero_output_for_mask=False, activation="tanh", input_masks=None,
                         recurrent_masks=None) -> tuple[Tensor, Tensor]:
    """Same arguments and results as ``simple_rnn``, any activation; unrolled in primitive ops."""
    act = F.get_activation(activation)
    input_masks, recurrent_masks = masks_data(input_masks), masks_data(recurrent_masks)

    def step(x_t, h):
        h = simple_rnn_cell(x_t, h, kernel, recurrent_kernel, bias, act, input_masks, recurrent_masks)
        return h, [h]
    outputs, (h,) = unroll(step, x, [as_tensor(h0)], mask, go_backwards, zero_output_for_mask)
    return outputs, h
