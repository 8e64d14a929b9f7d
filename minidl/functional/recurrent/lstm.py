"""LSTM: the fused op over a whole sequence, its CUDA steps, and its reference cell in primitive ops."""
from __future__ import annotations

import contextlib

import numpy as np

import minidl.functional as F
from minidl import workspace
from minidl.backend import Array, get_array_module
from minidl.cpu import cpu_features
from minidl.functional.recurrent._common import (RecurrentFunction, SubnormalFlush, activate, check_shapes,
                                                 cuda_step, derivative, fused_activation, mask_array,
                                                 side_by_side, state_in, transposed, unroll)
from minidl.functional.recurrent._dropout import (block, dropped_side_by_side, gate_products, masks_data, masks_in,
                                                  recurrent_product, state_grad)
from minidl.tensor import Tensor, as_tensor


def _fast_float32_tanh() -> bool:
    """True where NumPy runs float32 tanh on AVX-512 (x86-64-v4): there it costs 0.29 ns an
    element against exp's 0.44 (Sapphire Rapids, numpy 2.4), while on the AVX2 machines of earlier
    runs exp was the cheaper one, 2.1 ns against tanh's 3.4. Read from NumPy's own CPU-dispatch
    table; where that is missing, False."""
    return bool(cpu_features().get("AVX512_SKX"))


# Which one pass the four gates of a NumPy step take (see LSTMFunction.forward): "tanh" or "exp".
GATE_PASS = "tanh" if _fast_float32_tanh() else "exp"


def _quiet_overflow(on: bool) -> contextlib.AbstractContextManager:
    """NumPy's overflow warnings off while ``on`` (exp(-z) = inf is meant), else nothing. Set once
    around the whole loop, as each ``np.errstate`` costs about 3 µs: so an overflow elsewhere in
    the step (c_t past float32's range) is silent too, and shows as inf in the outputs."""
    return np.errstate(over="ignore") if on else contextlib.nullcontext()


def _swap_c_o(a: Array, units: int) -> Array:
    """Swap the last two gate blocks (c, o) along the last axis: Keras' i, f, c, o <-> i, f, o, c.

    Inside the fused LSTM the gates are stored i, f, o, c so that the three σ gates form one
    contiguous block; the swap is its own inverse, so it also maps gradients back.
    """
    xp = get_array_module(a)
    return xp.concatenate([a[..., :2 * units], a[..., 3 * units:], a[..., 2 * units:3 * units]], axis=-1)


def gate_blocks(A: Array, units: int) -> tuple[Array, Array, Array, Array]:
    """The four gate blocks of A (steps, 4u, batch) over all steps, as views (steps, u, batch)."""
    gates = A.reshape(A.shape[0], 4, units, A.shape[2])
    return gates[:, 0], gates[:, 1], gates[:, 2], gates[:, 3]


class LSTMFunction(RecurrentFunction):
    """Long short-term memory with a forget gate (Gers, Schmidhuber & Cummins, 2000) over a whole
    sequence, without peepholes, as Keras; Hochreiter & Schmidhuber's LSTM (1997) had no forget gate.

    Forward, at each step t, with x_t (batch, features) and the previous h, c (batch, units):

        i = σ(x_t·W_i + h·U_i + b_i)        input gate
        f = σ(x_t·W_f + h·U_f + b_f)        forget gate
        g = tanh(x_t·W_c + h·U_c + b_c)     candidate cell
        o = σ(x_t·W_o + h·U_o + b_o)        output gate
        c_t = f ⊙ c_{t-1} + i ⊙ g
        h_t = o ⊙ tanh(c_t)

    (σ is ``recurrent_activation``, tanh is ``activation``.) The weights come in Keras' gate
    order i, f, c, o; inside, the gate buffers are stored i, f, o, c, so that the three σ gates
    are one contiguous block (``_swap_c_o`` on the weights, and back on their gradients).

    All the weights are one matrix Θ = [U; W; b] (units + features + 1, 4u), and the four
    pre-activations of a step are one GEMM, z_t = Θᵀ·[h_{t-1}; x_t; 1], on a buffer HX whose
    step t holds h_{t-1}, x_t and a one for every sequence of the batch (Karpathy's batched numpy
    LSTM keeps its weights and biases in one matrix the same way,
    gist.github.com/karpathy/587454dc0146a6ae21fc). So the bias and the input projection cost no
    passes of their own, and backward gets ∂Θ = Σ_t [h_{t-1}; x_t; 1]·∂z_tᵀ, every weight's
    gradient, in one GEMM over all steps. With dropout masks (_dropout.py; given i, f, c, o,
    stored i, f, o, c like the gates) each gate's product uses its own dropped x_t and h, as
    Keras: one GEMM per gate on [h ⊙ n_g; x_t ⊙ m_g; 1].

    Backward (BPTT; ∂h_t, ∂c_t arrive from the output of step t and from step t + 1):

        ∂o       = ∂h_t ⊙ tanh(c_t)
        ∂c_t    += ∂h_t ⊙ o ⊙ (1 - tanh²(c_t))
        ∂i       = ∂c_t ⊙ g,     ∂f = ∂c_t ⊙ c_{t-1},     ∂g = ∂c_t ⊙ i
        ∂c_{t-1} = ∂c_t ⊙ f
        ∂z       = [∂i ⊙ i(1-i), ∂f ⊙ f(1-f), ∂o ⊙ o(1-o), ∂g ⊙ (1-g²)]   (stored order i, f, o, c)
        ∂h_{t-1} = ∂z · Uᵀ                                            (one GEMM per step)
        ∂Θ = [∂U; ∂W; ∂b] = Σ_t [h_{t-1}; x_t; 1]·∂z_t,   ∂x_t = ∂z_t·Wᵀ      (one GEMM each)

    Inputs: x (batch, steps, features), h0, c0 (batch, u), W (features, 4u), U (u, 4u),
    b (4u,) or absent. Outputs: y (batch, steps, u), the last h and the last c (batch, u).
    """

    kernel_position = 3

    def __init__(self, activation: str, recurrent_activation: str, mask=None, go_backwards=False,
                 zero_output_for_mask=False, input_masks=None, recurrent_masks=None):
        super().__init__(mask, go_backwards, zero_output_for_mask, input_masks, recurrent_masks)
        self.activation, self.recurrent_activation = activation, recurrent_activation

    # On CuPy with tanh and sigmoid, one kernel does the whole NumPy step of forward() below
    # after the GEMM (the four gates, c_t, h_t, the mask): (inputs, outputs, body) of the kernel.
    CUDA_FORWARD_STEP = ("T c_prev, T h_prev, bool keep, int32 entries",
                         "T c, T tc, T h, raw T gates", r"""
    // entry i of the transposed state (units, batch), one of `entries` = units·batch; gate block
    // k of z = gates (Θᵀ[h; x; 1]) is rows k·units onwards, so entry i of it is at k·entries + i.
    // Internal order i, f, o, c.
    T zi = gates[i], zf = gates[entries + i], zo = gates[2 * entries + i], zg = gates[3 * entries + i];
    T gi = 1 / (1 + exp(-zi)), gf = 1 / (1 + exp(-zf)), go = 1 / (1 + exp(-zo)), gg = tanh(zg);
    gates[i] = gi; gates[entries + i] = gf; gates[2 * entries + i] = go; gates[3 * entries + i] = gg;
    T c_new = gf * c_prev + gi * gg;
    T tc_new = tanh(c_new);
    tc = tc_new;
    c = keep ? c_new : c_prev;
    h = keep ? go * tc_new : h_prev;
""")

    def forward(self, x, h0, c0, W, U, b=None):
        xp = get_array_module(x)
        batch, steps, features = x.shape
        units = U.shape[0]
        keep = self._keep(xp)
        activations = (self.activation, self.recurrent_activation)
        cuda_forward_step = cuda_step(xp, activations, "minidl_lstm_forward", self.CUDA_FORWARD_STEP)
        Theta = _swap_c_o(xp.concatenate([U, W] + ([] if b is None else [b[None]])), units)  # [U; W; b]
        # One pass of one function over all four gates of a step, with the inner scales folded
        # into a copy of Θ: σ(z) = ½·tanh(½z) + ½ and tanh itself (GATE_PASS "tanh", scales ½
        # and 1), or σ(z) = 1/(1 + e^(-z)) and tanh(z) = 2σ(2z) - 1 ("exp", scales -1 and -2);
        # whichever of tanh and exp NumPy runs faster on this CPU for float32 (_fast_float32_tanh;
        # float64 takes the same pass).
        # exp(-z) overflows to inf for z < -88 (float32), and 1/(1 + inf) = 0 is then exact.
        gate_pass = GATE_PASS if cuda_forward_step is None and activations == ("tanh", "sigmoid") else None
        ThetaT_step = transposed(xp, Theta)  # a copy, scaled below; Θ itself stays for backward
        if gate_pass is not None:
            scale = xp.full((4 * units, 1), 0.5 if gate_pass == "tanh" else -1.0, dtype=x.dtype)
            scale[3 * units:] = 1.0 if gate_pass == "tanh" else -2.0
            ThetaT_step *= scale
        # HX[t] is [h_{t-1}; x_t; 1] (units + features + 1 rows, or no row of ones without a
        # bias) by batch, so step t's GEMM is Θᵀ·HX[t]; h_t is written into HX[t + 1], one
        # contiguous (units, batch) block, and HX[steps] holds only h_T. ∂Θ's GEMM takes HX side
        # by side (one copy in backward). Batch-major within a step, HX was ∂Θ's matrix as it is,
        # but h_t went through a buffer and a copy into a transposed view (5.7 µs a step) and the
        # step GEMM read HX[t] transposed: the op's forward + backward on benchmarks/recurrent.py's
        # LSTM took 7.37 and 7.14 ms against 7.25 and 7.04 now (best of 200, alternating in one
        # process, two runs).
        HX = xp.empty((steps + 1, Theta.shape[0], batch), dtype=x.dtype)
        HX[:steps, units:units + features] = (x[:, ::-1] if self.go_backwards else x).transpose(1, 2, 0)
        HX[:, units + features:] = 1
        HX[steps, units:] = 0
        HX[0, :units] = h0.T
        H = HX[:, :units]  # h of every step (steps + 1, units, batch), h0 first: a view
        masks = self._step_masks(xp, HX.shape[1], units, features)
        A = workspace.empty(xp, (steps, 4 * units, batch), x.dtype)  # z of every step, then its gates, in place
        C = workspace.empty(xp, H.shape, x.dtype)  # cᵀ likewise
        TC = workspace.empty(xp, (steps, units, batch), x.dtype)  # tanh(c_t), kept for backward
        C[0] = c0.T
        dropped = None if masks is None else xp.empty((HX.shape[1], batch), dtype=x.dtype)
        scratch = xp.empty((units, batch), dtype=x.dtype)
        # each gate's block over all steps, i, f, o, c (indexing these costs 0.6 µs a step;
        # unpacking gates[t] 1.6)
        gate_i, gate_f, gate_o, gate_g = gate_blocks(A, units)
        with _quiet_overflow(gate_pass == "exp"):  # (see gate_pass above)
            for t in range(steps):
                a = A[t]
                recurrent_product(xp, ThetaT_step, HX[t], a, masks, dropped)  # z_t = Θᵀ·[h_{t-1}; x_t; 1]
                if cuda_forward_step is not None:  # the whole step below
                    cuda_forward_step(C[t], H[t], True if keep is None else keep[t], units * batch,
                                      C[t + 1], TC[t], H[t + 1], a)
                    continue
                if gate_pass == "tanh":  # a holds ½z on i, f, o and z on g
                    xp.tanh(a, out=a)
                    sigmoid_gates = a[:3 * units]
                    sigmoid_gates *= 0.5
                    sigmoid_gates += 0.5
                elif gate_pass == "exp":  # a holds -z on i, f, o and -2z on g
                    xp.exp(a, out=a)
                    a += 1
                    xp.divide(1, a, out=a)
                    candidate = a[3 * units:]
                    candidate *= 2
                    candidate -= 1
                else:
                    activate(xp, self.recurrent_activation, a[:3 * units])
                    activate(xp, self.activation, a[3 * units:])
                i, f, o, g = gate_i[t], gate_f[t], gate_o[t], gate_g[t]
                c, h = C[t + 1], H[t + 1]
                # c_t = f ⊙ c_{t-1} + i ⊙ g
                xp.multiply(f, C[t], out=c)
                xp.multiply(i, g, out=scratch)
                c += scratch
                # h_t = o ⊙ tanh(c_t)
                if self.activation == "tanh":
                    xp.tanh(c, out=TC[t])
                else:
                    xp.copyto(TC[t], c)
                    activate(xp, self.activation, TC[t])
                xp.multiply(o, TC[t], out=h)
                if keep is not None:  # masked rows carry h and c through
                    xp.copyto(c, C[t], where=self.drop[t])
                    xp.copyto(h, H[t], where=self.drop[t])
        outputs = self._outputs(xp, H, keep), H[steps].T, C[steps].T.copy()
        if not self.will_backward():
            workspace.release(A, C, TC)
            return outputs
        self.HX, self.masks, self.A, self.C, self.TC, self.keep = HX, masks, A, C, TC, keep
        self.U, self.W, self.has_bias = Theta[:units], Theta[units:units + features], b is not None
        return outputs

    def _step_masks(self, xp, rows: int, units: int, features: int) -> Array | None:
        """The dropout masks as one (4, rows, batch) mask per gate over a column of HX,
        [n_g; m_g; 1] (ones where a kind of mask is absent), or None without masks."""
        if self.input_masks is None and self.recurrent_masks is None:
            return None
        given = self.input_masks if self.input_masks is not None else self.recurrent_masks
        masks = xp.ones((4, rows, given.shape[-1]), dtype=given.dtype)
        if self.recurrent_masks is not None:
            masks[:, :units] = self.recurrent_masks
        if self.input_masks is not None:
            masks[:, units:units + features] = self.input_masks
        return masks

    # On CuPy with tanh and sigmoid, one kernel does the NumPy step of backward() below up to
    # the GEMM: ∂h, ∂c at step t -> ∂z, ∂c_{t-1}, and the ∂h that a masked step passes on.
    CUDA_BACKWARD_STEP = ("T c_prev, T tc, T gh, bool keep, int32 entries, raw T gates",
                          "T gc, T passed, raw T dz", r"""
    // ∂h, ∂c at step t -> ∂z (internal order i, f, o, c), ∂c_{t-1}, and the masked ∂h pass-through
    T gi = gates[i], gf = gates[entries + i], go = gates[2 * entries + i], gg = gates[3 * entries + i];
    T dh = keep ? gh : (T)0, dc = keep ? gc : (T)0;
    T d_o = dh * tc;
    dc += dh * go * (1 - tc * tc);
    dz[i] = dc * gg * gi * (1 - gi);
    dz[entries + i] = dc * c_prev * gf * (1 - gf);
    dz[2 * entries + i] = d_o * go * (1 - go);
    dz[3 * entries + i] = dc * gi * (1 - gg * gg);
    gc = keep ? dc * gf : gc;
    passed = keep ? (T)0 : gh;
""")

    def backward(self, gy, gh_last, gc_last):
        xp = get_array_module(self.HX)
        A, C, TC, U, keep = self.A, self.C, self.TC, self.U, self.keep
        steps, units, batch = A.shape[0], C.shape[1], C.shape[2]
        H = self.HX[:, :units]  # h of every step, h0 first
        add_output_grad = self._output_grad(xp, gy, keep)
        gh = xp.zeros_like(C[0]) if gh_last is None else state_in(gh_last)
        gc = xp.zeros_like(C[0]) if gc_last is None else state_in(gc_last)
        grad_z = workspace.empty_like(A)  # ∂zᵀ for every step, in the internal order i, f, o, c
        scratch, gate_slopes = xp.empty_like(gh), xp.empty_like(A[0])  # gate_slopes: act'(z) of a step
        activations = (self.activation, self.recurrent_activation)
        default_activations = activations == ("tanh", "sigmoid")
        passed_h, passed_c = xp.empty_like(gh), xp.empty_like(gc)
        cuda_backward_step = cuda_step(xp, activations, "minidl_lstm_backward", self.CUDA_BACKWARD_STEP)
        gate_i, gate_f, gate_o, gate_g = gate_blocks(A, units)
        grad_i, grad_f, grad_o, grad_g = gate_blocks(grad_z, units)
        subnormals = SubnormalFlush(xp, A.dtype)
        for t in range(steps - 1, -1, -1):
            add_output_grad(t, gh)
            a, dz = A[t], grad_z[t]
            if cuda_backward_step is not None:  # the step below up to the GEMM
                cuda_backward_step(C[t], TC[t], gh, True if keep is None else keep[t], gh.size, a,
                                   gc, passed_h, dz)
                state_grad(xp, U, dz, gh, self.recurrent_masks, scratch)
                gh += passed_h
                continue
            if keep is not None:  # a masked step hands ∂h_t, ∂c_t straight to step t - 1
                xp.multiply(gh, self.drop[t], out=passed_h)
                xp.multiply(gc, self.drop[t], out=passed_c)
                gh *= keep[t]
                gc *= keep[t]
            i, f, o, g = gate_i[t], gate_f[t], gate_o[t], gate_g[t]
            di, df, do, dg = grad_i[t], grad_f[t], grad_o[t], grad_g[t]
            # h_t = o ⊙ tanh(c_t):  ∂o = ∂h ⊙ tanh(c_t),  ∂c_t += ∂h ⊙ o ⊙ tanh'(c_t)
            xp.multiply(gh, TC[t], out=do)
            if self.activation == "tanh":  # ∂h ⊙ o ⊙ (1 - tanh²(c_t)) = ∂h ⊙ o - ∂o ⊙ h_t: a call fewer
                xp.multiply(gh, o, out=scratch)
                gc += scratch
                xp.multiply(do, H[t + 1], out=scratch)
                gc -= scratch
            else:
                derivative(xp, self.activation, TC[t], scratch)
                scratch *= o
                scratch *= gh
                gc += scratch
            # c_t = f ⊙ c_{t-1} + i ⊙ g:  ∂i = ∂c ⊙ g,  ∂f = ∂c ⊙ c_{t-1},  ∂g = ∂c ⊙ i
            xp.multiply(gc, g, out=di)
            xp.multiply(gc, C[t], out=df)
            xp.multiply(gc, i, out=dg)
            gc *= f  # ∂c_{t-1} = ∂c_t ⊙ f
            # through the activations to the pre-activations z, all four blocks i, f, o, c at once
            if default_activations:  # σ' = s - s² on i, f, o and tanh' = 1 - g² on g, from one a²
                xp.multiply(a, a, out=gate_slopes)
                xp.subtract(a[:3 * units], gate_slopes[:3 * units], out=gate_slopes[:3 * units])
                xp.subtract(1, gate_slopes[3 * units:], out=gate_slopes[3 * units:])
                dz *= gate_slopes
            else:
                dz[:3 * units] *= derivative(xp, self.recurrent_activation, a[:3 * units],
                                             gate_slopes[:3 * units])
                dg *= derivative(xp, self.activation, g, scratch)
            subnormals.flush(dz)
            # z = x_t·W + h_{t-1}·U + b:  ∂h_{t-1}ᵀ = U·∂z_tᵀ
            state_grad(xp, U, dz, gh, self.recurrent_masks, scratch)
            if keep is not None:
                gh += passed_h
                gc += passed_c
            subnormals.check(steps - 1 - t, gh, gc)  # ∂h_{t-1}, ∂c_{t-1}
        workspace.release(A, C, TC)
        grad_z_side_by_side = side_by_side(xp, grad_z)
        workspace.release(grad_z)
        gx = self._input_grad(xp, grad_z_side_by_side, self.W, steps, batch)
        grads = (gx, gh.T if self.needs_input_grad[1] else None, gc.T if self.needs_input_grad[2] else None)
        gU = gW = gb = None
        if any(self.needs_input_grad[3:]):
            grad_Theta = _swap_c_o(self._weights_grad(xp, grad_z_side_by_side), units)
            features = self.W.shape[0]
            gU, gW, gb = grad_Theta[:units], grad_Theta[units:units + features], grad_Theta[units + features:]
        grads += (gW if self.needs_input_grad[3] else None, gU if self.needs_input_grad[4] else None)
        if self.has_bias:
            grads += (gb[0] if self.needs_input_grad[5] else None,)
        workspace.release(grad_z_side_by_side)
        return grads

    def _weights_grad(self, xp, grad_z_side_by_side: Array) -> Array:
        """∂Θ = Σ_t [h_{t-1}; x_t; 1]·∂z_tᵀ (rows of Θ, 4u), stored gate order: one GEMM over all
        steps, on HX and ∂Z side by side; with dropout masks, one GEMM per gate on its dropped
        copy of HX."""
        HX_side_by_side = side_by_side(xp, self.HX[:-1])   # (rows, steps·batch)
        if self.masks is None:
            # ∂Θ as (∂Z·HXᵀ)ᵀ, the orientation the GRU's ∂U takes: OpenBLAS ran it 4-6% faster
            # than HX·∂Zᵀ (1.79-1.90 against 1.86-2.03 ms best of 200 for the copies, the GEMM and
            # the swap, three runs alternating in one process, 2026-12-03 evening)
            grad_Theta = (grad_z_side_by_side @ HX_side_by_side.T).T
        else:
            width = grad_z_side_by_side.shape[0] // 4
            grad_Theta = xp.concatenate([dropped_side_by_side(HX_side_by_side, m)
                                         @ grad_z_side_by_side[block(g, width)].T
                                         for g, m in enumerate(self.masks)], axis=1)
        workspace.release(HX_side_by_side)
        return grad_Theta


def lstm(x, h0, c0, kernel, recurrent_kernel, bias=None, *, mask=None, go_backwards: bool = False,
         zero_output_for_mask: bool = False, activation="tanh", recurrent_activation="sigmoid",
         input_masks=None, recurrent_masks=None) -> tuple[Tensor, Tensor, Tensor]:
    """An LSTM over a sequence, Keras' gate order i, f, c, o; see LSTMFunction for the math.

    Args:
        x: (batch, steps, features). h0, c0: (batch, units). kernel: (features, 4·units).
        recurrent_kernel: (units, 4·units). bias: (4·units,) or None.
        mask, go_backwards, zero_output_for_mask: as simple_rnn.
        activation: of the candidate g and of c_t in h_t; recurrent_activation: of i, f, o.
        input_masks: optional dropout masks (4, batch, features), one per gate i, f, c, o, the
            same at every step; recurrent_masks: likewise (4, batch, units) for h (_dropout.py).
    Returns:
        (outputs (batch, steps, units), h (batch, units), c (batch, units)).
    Raises:
        ValueError: a shape that does not fit, or an activation the fused op lacks (use
            lstm_reference for those).
    """
    x, h0, c0, kernel, recurrent_kernel = (as_tensor(a) for a in (x, h0, c0, kernel, recurrent_kernel))
    batch, units = x.shape[0], recurrent_kernel.shape[0]
    check_shapes("lstm", x, {"h0": (h0, (batch, units)), "c0": (c0, (batch, units))},
                 {"kernel": (kernel, (x.shape[-1], 4 * units)),
                  "recurrent_kernel": (recurrent_kernel, (units, 4 * units)),
                  "bias": (bias, (4 * units,))}, mask)
    xp = get_array_module(x.data)
    stored_order = [0, 1, 3, 2]  # Keras' i, f, c, o -> the stored i, f, o, c
    masks = [masks_in(xp, given, "lstm", name, (4, batch, n), x.dtype)
             for given, name, n in ((input_masks, "input_masks", x.shape[-1]),
                                    (recurrent_masks, "recurrent_masks", units))]
    masks = [None if m is None else xp.ascontiguousarray(m[stored_order]) for m in masks]
    fn = LSTMFunction(fused_activation("lstm", "activation", activation),
                      fused_activation("lstm", "recurrent_activation", recurrent_activation),
                      mask_array(mask), go_backwards, zero_output_for_mask, *masks)
    args = (x, h0, c0, kernel, recurrent_kernel) + (() if bias is None else (bias,))
    return fn.apply(*args)


# --- the reference cell: the same equations in primitive ops, which autograd differentiates -------

def lstm_cell(x_t, h, c, kernel, recurrent_kernel, bias=None, activation=F.tanh,
              recurrent_activation=F.sigmoid, input_masks=None, recurrent_masks=None) -> tuple[Tensor, Tensor]:
    """One step of LSTMFunction's equations, Keras' gate order i, f, c, o; returns (h_t, c_t).

    x_t (batch, features), h and c (batch, units); the other arguments as ``lstm``. With masks,
    each gate's products come from its own dropped copy of x_t and of h, as Keras computes them.
    """
    units = h.shape[-1]
    z = gate_products(x_t, kernel, input_masks) + gate_products(h, recurrent_kernel, recurrent_masks)
    if bias is not None:
        z = z + bias
    i = recurrent_activation(z[:, :units])
    f = recurrent_activation(z[:, units:2 * units])
    g = activation(z[:, 2 * units:3 * units])
    o = recurrent_activation(z[:, 3 * units:])
    c_t = f * c + i * g
    return o * activation(c_t), c_t


def lstm_reference(x, h0, c0, kernel, recurrent_kernel, bias=None, *, mask=None, go_backwards=False,
                   zero_output_for_mask=False, activation="tanh", recurrent_activation="sigmoid",
                   input_masks=None, recurrent_masks=None) -> tuple[Tensor, Tensor, Tensor]:
    """Same arguments and results as ``lstm``, any activations; unrolled in primitive ops."""
    act, recurrent = F.get_activation(activation), F.get_activation(recurrent_activation)
    input_masks, recurrent_masks = masks_data(input_masks), masks_data(recurrent_masks)

    def step(x_t, h, c):
        h, c = lstm_cell(x_t, h, c, kernel, recurrent_kernel, bias, act, recurrent, input_masks,
                         recurrent_masks)
        return h, [h, c]
    outputs, (h, c) = unroll(step, x, [as_tensor(h0), as_tensor(c0)], mask, go_backwards,
                             zero_output_for_mask)
    return outputs, h, c
