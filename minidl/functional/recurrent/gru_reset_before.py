"""GRU in the reset-before form of Cho et al. (2014), Keras' ``reset_after=False``: the fused op
over a whole sequence. ``gru(..., reset_after=False)`` in gru.py runs it; its reference cell is
``gru_cell(..., reset_after=False)`` there.

No CUDA step: on CuPy this op runs the array-module step below (a dozen elementwise calls per
step), because the kernels of gru.py spell out the reset-after arithmetic only.
"""
from __future__ import annotations

from minidl import workspace
from minidl.backend import get_array_module
from minidl.functional.recurrent._common import (RecurrentFunction, SubnormalFlush, activate, derivative,
                                                 project_inputs, row_sums, side_by_side, state_in, transposed)
from minidl.functional.recurrent._dropout import recurrent_product, state_grad


class GRUResetBeforeFunction(RecurrentFunction):
    """Gated recurrent unit over a whole sequence, reset gate applied before the recurrent
    product (Cho et al., 2014; Keras' ``reset_after=False``).

    Forward, Keras' gate order z, r, h and one bias b (3u,), at each step t:

        z  = σ(x_t·W_z + h·U_z + b_z)            update gate
        r  = σ(x_t·W_r + h·U_r + b_r)            reset gate
        s  = r ⊙ h                               the reset state
        ĥ  = tanh(x_t·W_h + s·U_h + b_h)         candidate (reset before the product)
        h_t = z ⊙ h_{t-1} + (1 - z) ⊙ ĥ

    (h is h_{t-1}; σ is ``recurrent_activation``, tanh is ``activation``.) The input part
    p = x_t·W + b of all steps is one GEMM; the recurrent part takes two GEMMs a step, h·U_zr for
    z and r together, then s·U_h, which needs r. With recurrent dropout masks n_z, n_r, n_h
    (_dropout.py) h·U_z becomes (h ⊙ n_z)·U_z, h·U_r likewise, and s = r ⊙ h ⊙ n_h, as Keras.

    Backward (BPTT; ∂h_t from the output of step t and from step t + 1):

        ∂z       = ∂h_t ⊙ (h_{t-1} - ĥ)
        ∂a_h     = ∂h_t ⊙ (1 - z) ⊙ (1 - ĥ²)          a_h, the pre-activation of ĥ
        ∂s       = ∂a_h·U_hᵀ                           (one GEMM)
        ∂r       = ∂s ⊙ h_{t-1}
        ∂a_z     = ∂z ⊙ z(1-z),   ∂a_r = ∂r ⊙ r(1-r)
        ∂p_t     = [∂a_z, ∂a_r, ∂a_h]                  (also the gradient of each gate's h·U part)
        ∂h_{t-1} = ∂h_t ⊙ z + ∂s ⊙ r + [∂a_z, ∂a_r]·U_zrᵀ          (one more GEMM)
        ∂U_zr = Σ h_{t-1}ᵀ·[∂a_z, ∂a_r],  ∂U_h = Σ s_tᵀ·∂a_h,  ∂W = Σ x_tᵀ·∂p_t,  ∂b = Σ ∂p_t

    Inputs: x (batch, steps, features), h0 (batch, u), W (features, 3u), U (u, 3u), b (3u,) or
    absent. Outputs: y (batch, steps, u) and the last state h (batch, u).
    """

    kernel_position = 2

    def __init__(self, activation: str, recurrent_activation: str, mask=None, go_backwards=False,
                 zero_output_for_mask=False, input_masks=None, recurrent_masks=None):
        super().__init__(mask, go_backwards, zero_output_for_mask, input_masks, recurrent_masks)
        self.activation, self.recurrent_activation = activation, recurrent_activation

    def _gate_masks(self):
        """The recurrent masks of z and r (the h·U_zr product), or None."""
        return None if self.recurrent_masks is None else self.recurrent_masks[:2]

    def forward(self, x, h0, W, U, b=None):
        xp = get_array_module(x)
        steps, batch, units = x.shape[1], x.shape[0], U.shape[0]
        keep = self._keep(xp)
        XT, A = project_inputs(xp, x, W, self.go_backwards, self.input_masks, b)  # then z, r, ĥ in place
        S = workspace.empty(xp, (steps, units, batch), x.dtype)  # the reset state s of every step
        H = xp.empty((steps + 1, units, batch), dtype=x.dtype)
        H[0] = h0.T
        UT = transposed(xp, U)  # rows :2u are U_zrᵀ, rows 2u: are U_hᵀ
        q, scratch = xp.empty((2 * units, batch), dtype=x.dtype), xp.empty((units, batch), dtype=x.dtype)
        for t in range(steps):
            a, s, h = A[t], S[t], H[t + 1]
            recurrent_product(xp, UT[:2 * units], H[t], q, self._gate_masks(), scratch)
            a[:2 * units] += q
            activate(xp, self.recurrent_activation, a[:2 * units])
            z, r, hh = a[:units], a[units:2 * units], a[2 * units:]
            # s = r ⊙ h_{t-1} (⊙ n_h);  ĥ = tanh(x·W_h + b_h + s·U_h)
            xp.multiply(r, H[t], out=s)
            if self.recurrent_masks is not None:
                s *= self.recurrent_masks[2]
            xp.matmul(UT[2 * units:], s, out=scratch)
            hh += scratch
            activate(xp, self.activation, hh)
            # h_t = z ⊙ h_{t-1} + (1 - z) ⊙ ĥ = ĥ + z ⊙ (h_{t-1} - ĥ)
            xp.subtract(H[t], hh, out=scratch)
            scratch *= z
            xp.add(hh, scratch, out=h)
            if keep is not None:
                xp.copyto(h, H[t], where=self.drop[t])
        outputs = self._outputs(xp, H, keep), H[steps].T
        if not self.will_backward():
            workspace.release(A, S)
            return outputs
        self.XT, self.A, self.S, self.H = XT, A, S, H
        self.W, self.U, self.keep, self.has_bias = W, U, keep, b is not None
        return outputs

    def backward(self, gy, gh_last):
        xp = get_array_module(self.H)
        A, S, H, U, keep = self.A, self.S, self.H, self.U, self.keep
        steps, units = A.shape[0], H.shape[1]
        add_output_grad = self._output_grad(xp, gy, keep)
        gh = xp.zeros_like(H[0]) if gh_last is None else state_in(gh_last)
        grad_p = workspace.empty_like(A)  # ∂p_tᵀ of every step, z, r, h
        direct, grad_s, scratch = xp.empty_like(gh), xp.empty_like(gh), xp.empty_like(gh)
        gate_slopes = xp.empty_like(A[0, :2 * units])  # σ'(a) of z and r at a step
        U_zr, U_h = xp.ascontiguousarray(U[:, :2 * units]), xp.ascontiguousarray(U[:, 2 * units:])
        subnormals = SubnormalFlush(xp, A.dtype)
        for t in range(steps - 1, -1, -1):
            add_output_grad(t, gh)
            a, dp = A[t], grad_p[t]
            z, r, hh = a[:units], a[units:2 * units], a[2 * units:]
            dz, dr, dhh = dp[:units], dp[units:2 * units], dp[2 * units:]
            # h_t = z ⊙ h_{t-1} + (1 - z) ⊙ ĥ:  ∂z = ∂h ⊙ (h_{t-1} - ĥ),  ∂ĥ = ∂h - ∂h ⊙ z
            xp.subtract(H[t], hh, out=dz)
            dz *= gh
            xp.multiply(gh, z, out=direct)  # the direct path ∂h_t ⊙ z to h_{t-1}
            xp.subtract(gh, direct, out=dhh)
            dhh *= derivative(xp, self.activation, hh, scratch)  # ∂a_h
            subnormals.flush(dhh)
            # a_h = x·W_h + b_h + s·U_h:  ∂s = ∂a_h·U_hᵀ;  s = r ⊙ h_{t-1} (⊙ n_h)
            xp.matmul(U_h, dhh, out=grad_s)
            if self.recurrent_masks is not None:
                grad_s *= self.recurrent_masks[2]
            xp.multiply(grad_s, H[t], out=dr)
            xp.multiply(grad_s, r, out=scratch)
            direct += scratch
            dp[:2 * units] *= derivative(xp, self.recurrent_activation, a[:2 * units], gate_slopes)
            if keep is not None:  # a masked step: no gate gradient, ∂h_t goes straight through
                dp *= keep[t]
                xp.copyto(direct, gh, where=self.drop[t])
            subnormals.flush(dp[:2 * units])
            # the z, r part h_{t-1}·U_zr:  ∂h_{t-1}ᵀ = direct + U_zr·[∂a_z, ∂a_r]ᵀ
            state_grad(xp, U_zr, dp[:2 * units], gh, self._gate_masks(), scratch)
            gh += direct
            subnormals.check(steps - 1 - t, gh)  # ∂h_{t-1}
        workspace.release(A)
        grad_p_side_by_side = side_by_side(xp, grad_p)
        workspace.release(grad_p)
        gx, gW = self._input_grads(xp, self.XT, grad_p_side_by_side, self.W)
        gU = None
        if self.needs_input_grad[3]:
            gU_zr = self._recurrent_grad(xp, H, grad_p_side_by_side[:2 * units], self._gate_masks())
            S_side_by_side = side_by_side(xp, S)
            gU_h = (grad_p_side_by_side[2 * units:] @ S_side_by_side.T).T  # ∂U_h = Σ s_tᵀ·∂a_h
            workspace.release(S_side_by_side)
            gU = xp.concatenate([gU_zr, gU_h], axis=1)
        workspace.release(S)
        grads = (gx, gh.T if self.needs_input_grad[1] else None, gW, gU)
        if self.has_bias:
            grads += (row_sums(xp, grad_p_side_by_side) if self.needs_input_grad[4] else None,)
        workspace.release(grad_p_side_by_side)
        return grads
