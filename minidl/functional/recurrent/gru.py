"""GRU: the fused op of the reset-after form over a whole sequence, its CUDA steps, the public
``gru`` for both forms (the reset-before form's op is in gru_reset_before.py), and the reference
cell of both in primitive ops."""
from __future__ import annotations

import minidl.functional as F
from minidl import workspace
from minidl.backend import get_array_module
from minidl.functional.recurrent._common import (RecurrentFunction, SubnormalFlush, activate, check_shapes,
                                                 cuda_step, derivative, fused_activation, mask_array,
                                                 project_inputs, row_sums, side_by_side, state_in, transposed,
                                                 unroll)
from minidl.functional.recurrent._dropout import gate_products, masks_data, masks_in, recurrent_product, state_grad
from minidl.functional.recurrent.gru_reset_before import GRUResetBeforeFunction
from minidl.tensor import Tensor, as_tensor


class GRUFunction(RecurrentFunction):
    """Gated recurrent unit over a whole sequence, in the reset-after form that cuDNN and PyTorch
    run (Keras' default ``reset_after=True``): the reset gate scales the recurrent product h·U_h.
    Cho et al. (2014) reset before the product, ĥ = tanh(x_t·W_h + (r ⊙ h)·U_h + b_h): Keras'
    ``reset_after=False``, GRUResetBeforeFunction (gru_reset_before.py).

    Forward, Keras' gate order z, r, h, input bias b and recurrent bias b' (the rows of the
    (2, 3u) bias), at each step t:

        z  = σ(x_t·W_z + b_z + h·U_z + b'_z)            update gate
        r  = σ(x_t·W_r + b_r + h·U_r + b'_r)            reset gate
        ĥ  = tanh(x_t·W_h + b_h + r ⊙ (h·U_h + b'_h))   candidate (reset after the product)
        h_t = z ⊙ h_{t-1} + (1 - z) ⊙ ĥ

    (σ is ``recurrent_activation``, tanh is ``activation``.) The input part p = x_t·W + b of all
    steps is one GEMM; the recurrent part q = h·U + b' of all three gates is one GEMM per step.
    With dropout masks (_dropout.py) each gate's products use its own dropped x_t and h, as Keras.

    Backward (BPTT; ∂h_t from the output of step t and from step t + 1):

        ∂z       = ∂h_t ⊙ (h_{t-1} - ĥ)
        ∂ĥ       = ∂h_t ⊙ (1 - z)
        ∂a_h     = ∂ĥ ⊙ (1 - ĥ²)                        a_h = p_h + r ⊙ q_h, the pre-activation of ĥ
        ∂r       = ∂a_h ⊙ q_h,       ∂q_h = ∂a_h ⊙ r
        ∂a_z     = ∂z ⊙ z(1-z),      ∂a_r = ∂r ⊙ r(1-r)
        ∂p_t     = [∂a_z, ∂a_r, ∂a_h],   ∂q_t = [∂a_z, ∂a_r, ∂q_h]        (stored order z, r, h)
        ∂h_{t-1} = ∂h_t ⊙ z + ∂q_t · Uᵀ                 (one GEMM per step)
        ∂W = Σ x_tᵀ·∂p_t, ∂U = Σ h_{t-1}ᵀ·∂q_t, ∂b = Σ ∂p_t, ∂b' = Σ ∂q_t, ∂x_t = ∂p_t·Wᵀ

    Inputs: x (batch, steps, features), h0 (batch, u), W (features, 3u), U (u, 3u), b (2, 3u)
    or absent. Outputs: y (batch, steps, u) and the last state h (batch, u).
    """

    kernel_position = 2

    def __init__(self, activation: str, recurrent_activation: str, mask=None, go_backwards=False,
                 zero_output_for_mask=False, input_masks=None, recurrent_masks=None):
        super().__init__(mask, go_backwards, zero_output_for_mask, input_masks, recurrent_masks)
        self.activation, self.recurrent_activation = activation, recurrent_activation

    # On CuPy with tanh and sigmoid, one kernel does the whole NumPy step of forward() below
    # (q += b', the three gates, h_t, the mask): (inputs, outputs, body) of the kernel.
    CUDA_FORWARD_STEP = ("T h_prev, bool keep, int32 units, int32 batch, raw T bias_r",
                         "T h, raw T gates, raw T q", r"""
    // gates holds the input part p = Wᵀx + b (z, r, h); q = Uᵀh becomes Uᵀh + b' (kept for
    // backward). Entry i of the (units, batch) state is unit j = i / batch; gate k at k·entries + i.
    const ptrdiff_t entries = (ptrdiff_t)units * batch, j = i / batch;
    T qz = q[i] + bias_r[j], qr = q[entries + i] + bias_r[units + j];
    T qh = q[2 * entries + i] + bias_r[2 * units + j];
    q[i] = qz; q[entries + i] = qr; q[2 * entries + i] = qh;
    T z = 1 / (1 + exp(-(gates[i] + qz)));
    T r = 1 / (1 + exp(-(gates[entries + i] + qr)));
    T hh = tanh(gates[2 * entries + i] + r * qh);
    gates[i] = z; gates[entries + i] = r; gates[2 * entries + i] = hh;
    h = keep ? hh + z * (h_prev - hh) : h_prev;
""")

    def forward(self, x, h0, W, U, b=None):
        xp = get_array_module(x)
        steps, batch, units = x.shape[1], x.shape[0], U.shape[0]
        keep = self._keep(xp)
        # the input part and b, then the gates z, r, ĥ in place
        XT, A = project_inputs(xp, x, W, self.go_backwards, self.input_masks, None if b is None else b[0])
        Q = workspace.empty_like(A)  # recurrent part h·U + b', kept for backward (q_h)
        H = xp.empty((steps + 1, units, batch), dtype=x.dtype)
        H[0] = h0.T
        UT = transposed(xp, U)
        scratch = xp.empty((units, batch), dtype=x.dtype)
        activations = (self.activation, self.recurrent_activation)
        cuda_forward_step = cuda_step(xp, activations, "minidl_gru_forward", self.CUDA_FORWARD_STEP)
        recurrent_bias = None
        if cuda_forward_step is not None:
            recurrent_bias = b[1] if b is not None else xp.zeros(3 * units, dtype=x.dtype)
        elif b is not None:  # b' as whole (3u, batch) rows: adding it broadcast along the batch
            # took 3.7 µs a step against 1.3 (benchmarks/recurrent.py's GRU shapes)
            recurrent_bias = xp.ascontiguousarray(xp.broadcast_to(b[1][:, None], (3 * units, batch)))
        for t in range(steps):
            a, q, h = A[t], Q[t], H[t + 1]
            recurrent_product(xp, UT, H[t], q, self.recurrent_masks, scratch)  # (h_{t-1}·U)ᵀ = Uᵀ·h_{t-1}ᵀ
            if cuda_forward_step is not None:  # the whole step below, and q += b'
                cuda_forward_step(H[t], True if keep is None else keep[t], units, batch, recurrent_bias,
                                  h, a, q)
                continue
            if b is not None:
                q += recurrent_bias
            a[:2 * units] += q[:2 * units]
            activate(xp, self.recurrent_activation, a[:2 * units])
            z, r, hh = a[:units], a[units:2 * units], a[2 * units:]
            # ĥ = tanh(x·W_h + b_h + r ⊙ q_h)
            xp.multiply(r, q[2 * units:], out=scratch)
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
            workspace.release(A, Q)
            return outputs
        self.XT, self.A, self.Q, self.H = XT, A, Q, H
        self.W, self.U, self.keep, self.has_bias = W, U, keep, b is not None
        return outputs

    # On CuPy with tanh and sigmoid, one kernel does the NumPy step of backward() below up to
    # the GEMM: ∂h at step t -> ∂p_t, ∂q_t, and the direct path ∂h_t ⊙ z (all of ∂h_t if masked).
    CUDA_BACKWARD_STEP = ("T h_prev, T gh, bool keep, int32 entries, raw T gates, raw T q",
                          "T direct, raw T dp, raw T dq", r"""
    T z = gates[i], r = gates[entries + i], hh = gates[2 * entries + i];
    T dh = keep ? gh : (T)0;
    T dz = dh * (h_prev - hh) * z * (1 - z);
    T dah = dh * (1 - z) * (1 - hh * hh);
    T dr = dah * q[2 * entries + i] * r * (1 - r);
    dp[i] = dz; dp[entries + i] = dr; dp[2 * entries + i] = dah;
    dq[i] = dz; dq[entries + i] = dr; dq[2 * entries + i] = dah * r;
    direct = keep ? dh * z : gh;
""")

    def backward(self, gy, gh_last):
        xp = get_array_module(self.H)
        A, Q, H, U, keep = self.A, self.Q, self.H, self.U, self.keep
        steps, units = A.shape[0], H.shape[1]
        add_output_grad = self._output_grad(xp, gy, keep)
        gh = xp.zeros_like(H[0]) if gh_last is None else state_in(gh_last)
        grad_p, grad_q = workspace.empty_like(A), workspace.empty_like(Q)  # ∂p_tᵀ, ∂q_tᵀ of every step
        direct, scratch = xp.empty_like(gh), xp.empty_like(gh)
        gate_slopes = xp.empty_like(A[0, :2 * units])  # σ'(a) of z and r at a step
        activations = (self.activation, self.recurrent_activation)
        cuda_backward_step = cuda_step(xp, activations, "minidl_gru_backward", self.CUDA_BACKWARD_STEP)
        subnormals = SubnormalFlush(xp, A.dtype)
        for t in range(steps - 1, -1, -1):
            add_output_grad(t, gh)
            a, q, dp, dq = A[t], Q[t], grad_p[t], grad_q[t]
            if cuda_backward_step is not None:  # the step below up to the GEMM
                cuda_backward_step(H[t], gh, True if keep is None else keep[t], gh.size, a, q, direct, dp, dq)
                state_grad(xp, U, dq, gh, self.recurrent_masks, scratch)
                gh += direct
                continue
            z, r, hh = a[:units], a[units:2 * units], a[2 * units:]
            dz, dr, dhh = dp[:units], dp[units:2 * units], dp[2 * units:]
            # h_t = z ⊙ h_{t-1} + (1 - z) ⊙ ĥ:  ∂z = ∂h ⊙ (h_{t-1} - ĥ),  ∂ĥ = ∂h - ∂h ⊙ z
            xp.subtract(H[t], hh, out=dz)
            dz *= gh
            xp.multiply(gh, z, out=direct)  # the direct path ∂h_t ⊙ z to h_{t-1}
            xp.subtract(gh, direct, out=dhh)
            # ĥ = tanh(a_h): ∂a_h = ∂ĥ ⊙ tanh'
            dhh *= derivative(xp, self.activation, hh, scratch)
            # a_h = x·W_h + b_h + r ⊙ q_h:  ∂r = ∂a_h ⊙ q_h,  ∂q_h = ∂a_h ⊙ r
            xp.multiply(dhh, q[2 * units:], out=dr)
            xp.multiply(dhh, r, out=dq[2 * units:])
            # z, r = σ(a_z), σ(a_r); the same ∂a reaches the input and the recurrent part
            dp[:2 * units] *= derivative(xp, self.recurrent_activation, a[:2 * units], gate_slopes)
            dq[:2 * units] = dp[:2 * units]
            if keep is not None:  # a masked step: no gate gradient, ∂h_t goes straight through
                dp *= keep[t]
                dq *= keep[t]
                xp.copyto(direct, gh, where=self.drop[t])
            subnormals.flush(dp)
            subnormals.flush(dq)
            # q = h_{t-1}·U + b':  ∂h_{t-1}ᵀ = (∂h ⊙ z)ᵀ + U·∂q_tᵀ
            state_grad(xp, U, dq, gh, self.recurrent_masks, scratch)
            gh += direct
            subnormals.check(steps - 1 - t, gh)  # ∂h_{t-1}
        workspace.release(A, Q)
        grad_p_side_by_side, grad_q_side_by_side = side_by_side(xp, grad_p), side_by_side(xp, grad_q)
        workspace.release(grad_p, grad_q)
        gx, gW = self._input_grads(xp, self.XT, grad_p_side_by_side, self.W)
        grads = (gx, gh.T if self.needs_input_grad[1] else None, gW,
                 self._recurrent_grad(xp, H, grad_q_side_by_side))
        if self.has_bias:
            grads += (xp.stack([row_sums(xp, grad_p_side_by_side), row_sums(xp, grad_q_side_by_side)])
                      if self.needs_input_grad[4] else None,)
        workspace.release(grad_p_side_by_side, grad_q_side_by_side)
        return grads


def gru(x, h0, kernel, recurrent_kernel, bias=None, *, mask=None, go_backwards: bool = False,
        zero_output_for_mask: bool = False, activation="tanh", recurrent_activation="sigmoid",
        reset_after: bool = True, input_masks=None, recurrent_masks=None) -> tuple[Tensor, Tensor]:
    """A GRU over a sequence, gates z, r, h; see GRUFunction (reset after, Keras' default) and
    GRUResetBeforeFunction (``reset_after=False``, Cho et al. 2014).

    Args:
        x: (batch, steps, features). h0: (batch, units). kernel: (features, 3·units).
        recurrent_kernel: (units, 3·units). bias: (2, 3·units) (input bias, recurrent bias)
            with reset_after, (3·units,) without; or None.
        mask, go_backwards, zero_output_for_mask: as simple_rnn.
        activation: of the candidate ĥ; recurrent_activation: of z and r.
        reset_after: apply the reset gate after the recurrent product (True) or before it.
        input_masks: optional dropout masks (3, batch, features), one per gate z, r, h, the same
            at every step; recurrent_masks: likewise (3, batch, units) for h (see _dropout.py).
    Returns:
        (outputs (batch, steps, units), h (batch, units)).
    Raises:
        ValueError: a shape that does not fit, or an activation the fused op lacks (use
            gru_reference for those).
    """
    x, h0, kernel, recurrent_kernel = (as_tensor(a) for a in (x, h0, kernel, recurrent_kernel))
    batch, features, units = x.shape[0], x.shape[-1], recurrent_kernel.shape[0]
    check_shapes("gru", x, {"h0": (h0, (batch, units))},
                 {"kernel": (kernel, (features, 3 * units)),
                  "recurrent_kernel": (recurrent_kernel, (units, 3 * units)),
                  "bias": (bias, (2, 3 * units) if reset_after else (3 * units,))}, mask)
    xp = get_array_module(x.data)
    cls = GRUFunction if reset_after else GRUResetBeforeFunction
    fn = cls(fused_activation("gru", "activation", activation),
             fused_activation("gru", "recurrent_activation", recurrent_activation),
             mask_array(mask), go_backwards, zero_output_for_mask,
             masks_in(xp, input_masks, "gru", "input_masks", (3, batch, features), x.dtype),
             masks_in(xp, recurrent_masks, "gru", "recurrent_masks", (3, batch, units), x.dtype))
    args = (x, h0, kernel, recurrent_kernel) + (() if bias is None else (bias,))
    return fn.apply(*args)


# --- the reference cell: the same equations in primitive ops, which autograd differentiates -------

def gru_cell(x_t, h, kernel, recurrent_kernel, bias=None, activation=F.tanh,
             recurrent_activation=F.sigmoid, reset_after: bool = True, input_masks=None,
             recurrent_masks=None) -> Tensor:
    """One step of GRUFunction's equations (reset after; bias (2, 3u)) or GRUResetBeforeFunction's
    (reset before; bias (3u,)), gates z, r, h; returns h_t.

    x_t (batch, features), h (batch, units); the other arguments as ``gru``. With masks, each
    gate's products come from its own dropped copy of x_t and of h, as Keras computes them.
    """
    units = h.shape[-1]
    p = gate_products(x_t, kernel, input_masks)
    if reset_after:
        q = gate_products(h, recurrent_kernel, recurrent_masks)
        if bias is not None:
            p, q = p + bias[0], q + bias[1]
        z = recurrent_activation(p[:, :units] + q[:, :units])
        r = recurrent_activation(p[:, units:2 * units] + q[:, units:2 * units])
        hh = activation(p[:, 2 * units:] + r * q[:, 2 * units:])
        return z * h + (1 - z) * hh
    if bias is not None:
        p = p + bias
    q = gate_products(h, recurrent_kernel[:, :2 * units], None if recurrent_masks is None else recurrent_masks[:2])
    z = recurrent_activation(p[:, :units] + q[:, :units])
    r = recurrent_activation(p[:, units:2 * units] + q[:, units:])
    h_h = h if recurrent_masks is None else h * recurrent_masks[2]
    hh = activation(p[:, 2 * units:] + F.matmul(r * h_h, recurrent_kernel[:, 2 * units:]))
    return z * h + (1 - z) * hh


def gru_reference(x, h0, kernel, recurrent_kernel, bias=None, *, mask=None, go_backwards=False,
                  zero_output_for_mask=False, activation="tanh", recurrent_activation="sigmoid",
                  reset_after: bool = True, input_masks=None, recurrent_masks=None) -> tuple[Tensor, Tensor]:
    """Same arguments and results as ``gru``, any activations; unrolled in primitive ops."""
    act, recurrent = F.get_activation(activation), F.get_activation(recurrent_activation)
    input_masks, recurrent_masks = masks_data(input_masks), masks_data(recurrent_masks)

    def step(x_t, h):
        h = gru_cell(x_t, h, kernel, recurrent_kernel, bias, act, recurrent, reset_after, input_masks,
                     recurrent_masks)
        return h, [h]
    outputs, (h,) = unroll(step, x, [as_tensor(h0)], mask, go_backwards, zero_output_for_mask)
    return outputs, h
