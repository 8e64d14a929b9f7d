"""Fused recurrent ops: SimpleRNN, LSTM and GRU over whole sequences, BPTT derived by hand.

Each op is one Function that runs the whole sequence. The design, the same for all three:

    forward   X·W + b for every step at once (one GEMM), then a Python loop over time for the
              recurrent product h·U (one GEMM per step for all gates) and the gate arithmetic,
              done in place in buffers allocated once per call;
    backward  back-propagation through time: a reverse loop that does one GEMM per step
              (∂z·Uᵀ) and writes each step's pre-activation gradient ∂z into one buffer, then
              one GEMM each for ∂W = Xᵀ·∂Z, ∂U = H_prevᵀ·∂Z and ∂X = ∂Z·Wᵀ over all steps.

Layouts are Keras' (gate blocks along the last axis): SimpleRNN kernel (features, units);
LSTM kernel (features, 4u), recurrent_kernel (u, 4u), bias (4u,), gates i, f, c, o; GRU with
``reset_after=True``: kernel (features, 3u), recurrent_kernel (u, 3u), bias (2, 3u) (input
bias, recurrent bias), gates z, r, h. Inputs and outputs are batch-major (batch, steps, ...).

Inside, the loops run time-major and *transposed*: a step's state is hᵀ (units, batch) and its
gates zᵀ = Wᵀ·x_tᵀ + Uᵀ·hᵀ (gates·units, batch), so that each gate block is a run of whole rows,
contiguous in memory. The gate arithmetic is a dozen small elementwise ops per step, and NumPy
runs each one two to three times faster on a contiguous block than on the column slice a
(batch, gates·units) layout would give (measured here: 1.3 µs against 2.7 µs for a 32 x 128
product). The equations in the docstrings are written batch-major, as Keras states them.

The large internal buffers (the gates of every step, ∂z of every step and their side-by-side
copies) come from ``minidl.workspace`` and go back to it when backward is done, so the next
call reuses their memory instead of faulting in fresh pages (see that module for why).

Masks follow Keras 3 (``keras.src.backend.*.rnn``): ``mask`` is bool (batch, steps); at a False
step every state is carried through unchanged and the output repeats the previous output
(zeros before the first valid step), or is zero when ``zero_output_for_mask``. With
``go_backwards`` the steps (and the mask) are processed last to first and the outputs come out
in that processed order, as Keras returns them.

On CuPy, with the default activations (tanh, sigmoid), the gate arithmetic of a step is one
fused elementwise kernel forward and one backward (``cupy.ElementwiseKernel``, compiled on
first use). The primitive-op reference cells that these ops are tested against live in
``minidl.functional.recurrent_reference``.
"""
from __future__ import annotations

from minidl import workspace
from minidl.backend import Array, get_array_module
from minidl.function import Function
from minidl.tensor import Tensor, as_tensor

# Activations the fused ops differentiate by hand, each from its output y alone.
FUSED_ACTIVATIONS = ("tanh", "sigmoid", "relu", "linear")


def _activation_name(activation) -> str | None:
    """The fused name of an activation given by name or as minidl.functional's function."""
    if activation is None:
        return "linear"
    if isinstance(activation, str):
        return activation if activation in FUSED_ACTIVATIONS else None
    name = getattr(activation, "__name__", None)
    module = getattr(activation, "__module__", "")
    return name if name in FUSED_ACTIVATIONS and module.startswith("minidl.functional") else None


def can_fuse(*activations) -> bool:
    """True when the fused ops implement every activation given (else use the reference cells)."""
    return all(_activation_name(a) is not None for a in activations)


def _activate(xp, name: str, a: Array) -> None:
    """a ← act(a), in place."""
    if name == "tanh":
        xp.tanh(a, out=a)
    elif name == "sigmoid":  # σ(a) = ½·tanh(½a) + ½: never overflows, unlike 1/(1+exp(-a))
        a *= 0.5
        xp.tanh(a, out=a)
        a *= 0.5
        a += 0.5
    elif name == "relu":
        xp.maximum(a, 0, out=a)


def _derivative(xp, name: str, y: Array, out: Array) -> Array:
    """out ← act'(a) written from y = act(a): tanh 1 - y², σ y - y², relu [y > 0], linear 1."""
    if name == "tanh":
        xp.multiply(y, y, out=out)
        xp.subtract(1, out, out=out)
    elif name == "sigmoid":
        xp.multiply(y, y, out=out)
        xp.subtract(y, out, out=out)
    elif name == "relu":
        xp.greater(y, 0, out=out)
    else:
        out.fill(1)
    return out


def _batch_last(x: Array) -> Array:
    """(batch, steps, ...) -> (steps, ..., batch), a view: the loops' transposed layout."""
    return x.transpose((1,) + tuple(range(2, x.ndim)) + (0,))


def _time_major(x: Array, go_backwards: bool) -> Array:
    """(batch, steps, ...) -> (steps, ..., batch) in processing order, as a view."""
    x = _batch_last(x)
    return x[::-1] if go_backwards else x


class _Recurrent(Function):
    """What the three fused ops share: the mask, the output rule, the gradients over all steps.

    Inside, every per-step array is transposed, (units or gates·units, batch); see the module
    docstring.
    """

    def __init__(self, mask: Array | None, go_backwards: bool, zero_output_for_mask: bool):
        self.mask = mask
        self.go_backwards = go_backwards
        self.zero_output_for_mask = zero_output_for_mask

    def _keep(self, xp) -> Array | None:
        """The mask as (steps, 1, batch) bool in processing order, or None; its negation goes to
        ``self.drop``, made once here so that no step allocates one."""
        self.drop = None
        if self.mask is None:
            return None
        keep = xp.ascontiguousarray(_time_major(xp.asarray(self.mask, dtype=bool), self.go_backwards)[:, None])
        self.drop = ~keep
        return keep

    def _outputs(self, xp, H: Array, keep: Array | None) -> Array:
        """Keras' outputs (batch, steps, u) from the states H (steps + 1, u, batch).

        Unmasked, the output of step t is h_t (a view of H). Masked, a False step repeats the
        previous output (zeros before the first valid step), or gives zeros.
        """
        if keep is None:
            return H[1:].transpose(2, 0, 1)
        Y = xp.empty_like(H[1:])
        previous = xp.zeros_like(H[0])
        for t in range(Y.shape[0]):
            xp.copyto(Y[t], H[t + 1])
            xp.copyto(Y[t], 0 if self.zero_output_for_mask else previous, where=self.drop[t])
            previous = Y[t]
        return Y.transpose(2, 0, 1)

    def _output_grad(self, xp, gy: Array | None, keep: Array | None):
        """Step function that adds ∂L/∂(output of step t) into ∂L/∂h_t (transposed).

        An output at a masked step is the output of the last valid step before it (or zero), so
        its gradient is carried back, in ``carry``, to that step; with zero_output_for_mask a
        masked output is a constant and passes nothing back.
        """
        if gy is None:
            return lambda t, gh: None
        gy = xp.ascontiguousarray(_batch_last(gy))  # (steps, u, batch); already in processing order
        if keep is None:
            def add(t, gh):
                gh += gy[t]
            return add
        carry = xp.zeros_like(gy[0])
        used = xp.empty_like(gy[0])

        def add_masked(t, gh):
            if self.zero_output_for_mask:
                xp.multiply(gy[t], keep[t], out=used)
                gh += used
                return
            xp.add(carry, gy[t], out=carry)
            xp.multiply(carry, keep[t], out=used)
            gh += used
            xp.subtract(carry, used, out=carry)  # handed to h_t: nothing carried past a valid step
        return add_masked

    def _input_grads(self, xp, XT: Array, Dc: Array, W: Array) -> tuple:
        """∂X = ∂Z·Wᵀ as (batch, steps, features) and ∂W = Xᵀ·∂Z: one GEMM each over all steps,
        from ∂Z side by side (see ``_side_by_side``)."""
        steps, batch = XT.shape[0], XT.shape[2]
        gx = gW = None
        if self.needs_input_grad[0]:
            gx = (W @ Dc).reshape(-1, steps, batch)
            gx = xp.ascontiguousarray((gx[:, ::-1] if self.go_backwards else gx).transpose(2, 1, 0))
        if self.needs_input_grad[self.kernel_position]:
            gW = XT.transpose(1, 0, 2).reshape(-1, steps * batch) @ Dc.T
        return gx, gW

    def _recurrent_grad(self, xp, H: Array, Dc: Array) -> Array | None:
        """∂U = H_prevᵀ·∂Z (units, G): one GEMM over all steps."""
        if not self.needs_input_grad[self.kernel_position + 1]:
            return None
        H_prev = _side_by_side(xp, H[:-1])
        gU = (Dc @ H_prev.T).T  # ∂Uᵀ = ∂Z·H_prev: this order ran 8% faster here than H_prevᵀ·∂Zᵀ
        workspace.release(H_prev)
        return gU


def _side_by_side(xp, D: Array) -> Array:
    """D (steps, G, batch) -> (G, steps·batch): every step's ∂z side by side, so that each sum
    over steps is one GEMM (and the bias gradient the row sums). One transposing copy, into a
    workspace buffer: release the result when done."""
    steps, width, batch = D.shape
    buffer = workspace.empty(xp, (width, steps, batch), D.dtype)
    xp.copyto(buffer, D.transpose(1, 0, 2))
    return buffer.reshape(width, steps * batch)


def _project(xp, x: Array, W: Array, go_backwards: bool) -> tuple[Array, Array]:
    """Xᵀ (steps, features, batch) in processing order, and Wᵀ·x_tᵀ for every step (steps, G,
    batch), a workspace buffer: one batched GEMM."""
    XT = xp.ascontiguousarray(_time_major(x, go_backwards))
    projected = workspace.empty(xp, (XT.shape[0], W.shape[1], XT.shape[2]), x.dtype)
    return XT, xp.matmul(W.T, XT, out=projected)


def _state_in(state: Array) -> Array:
    """A copy of a (batch, u) state as the loops hold it, (u, batch) contiguous: a copy, because
    the loops update it in place (ascontiguousarray would hand back a view when batch is 1)."""
    return state.T.copy()


# --- SimpleRNN ---------------------------------------------------------------------------------

class SimpleRNNFunction(_Recurrent):
    """A fully connected recurrence over a whole sequence (Elman, 1990).

    Forward, at each step t, with x_t (batch, features) and h_{t-1} (batch, units):

        z_t = x_t·W + h_{t-1}·U + b
        h_t = act(z_t)

    Backward (BPTT; ∂h_t gathers the output gradient of step t and ∂h_t from step t + 1):

        ∂z_t     = ∂h_t ⊙ act'(z_t)                (act' from h_t: tanh 1 - h², relu [h > 0])
        ∂h_{t-1} = ∂z_t · Uᵀ                       (one GEMM per step)
        ∂W = Σ_t x_tᵀ·∂z_t,  ∂U = Σ_t h_{t-1}ᵀ·∂z_t,  ∂b = Σ_t Σ_batch ∂z_t,  ∂x_t = ∂z_t·Wᵀ
                                                   (one GEMM each, over all steps at once)

    Inputs: x (batch, steps, features), h0 (batch, u), W (features, u), U (u, u), b (u,) or
    absent. Outputs: y (batch, steps, u) and the last state h (batch, u).
    """

    kernel_position = 2

    def __init__(self, activation: str, mask=None, go_backwards=False, zero_output_for_mask=False):
        super().__init__(mask, go_backwards, zero_output_for_mask)
        self.activation = activation

    def forward(self, x, h0, W, U, b=None):
        xp = get_array_module(x)
        steps = x.shape[1]
        keep = self._keep(xp)
        XT, Z = _project(xp, x, W, self.go_backwards)
        if b is not None:
            Z += b[:, None]
        H = xp.empty((steps + 1,) + h0.shape[::-1], dtype=x.dtype)  # hᵀ of every step, h0 first
        H[0] = h0.T
        UT = xp.ascontiguousarray(U.T)
        for t in range(steps):
            h = H[t + 1]
            xp.matmul(UT, H[t], out=h)  # (h_{t-1}·U)ᵀ = Uᵀ·h_{t-1}ᵀ
            h += Z[t]
            _activate(xp, self.activation, h)
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
        gh = xp.zeros_like(H[0]) if gh_last is None else _state_in(gh_last)
        D = workspace.empty_like(H[1:])
        passed = xp.empty_like(gh)
        for t in range(steps - 1, -1, -1):
            add_output_grad(t, gh)
            d = D[t]
            if keep is not None:  # a masked step hands ∂h_t straight to h_{t-1}
                xp.multiply(gh, self.drop[t], out=passed)
                gh *= keep[t]
            # h_t = act(z_t)
            xp.multiply(gh, _derivative(xp, self.activation, H[t + 1], d), out=d)
            # z_t = x_t·W + h_{t-1}·U + b:  ∂h_{t-1}ᵀ = U·∂z_tᵀ
            xp.matmul(U, d, out=gh)
            if keep is not None:
                gh += passed
        Dc = _side_by_side(xp, D)
        gx, gW = self._input_grads(xp, self.XT, Dc, self.W)
        grads = (gx, gh.T if self.needs_input_grad[1] else None, gW, self._recurrent_grad(xp, H, Dc))
        if self.has_bias:
            grads += (Dc.sum(axis=1) if self.needs_input_grad[4] else None,)
        workspace.release(D, Dc)
        return grads


# --- LSTM --------------------------------------------------------------------------------------

def _swap_c_o(a: Array, units: int) -> Array:
    """Swap the last two gate blocks (c, o) along the last axis: Keras' i, f, c, o <-> i, f, o, c.

    Inside the fused LSTM the gates are stored i, f, o, c so that the three σ gates form one
    contiguous block; the swap is its own inverse, so it also maps gradients back.
    """
    xp = get_array_module(a)
    return xp.concatenate([a[..., :2 * units], a[..., 3 * units:], a[..., 2 * units:3 * units]], axis=-1)


class LSTMFunction(_Recurrent):
    """Long short-term memory over a whole sequence (Hochreiter & Schmidhuber, 1997).

    Forward, Keras' gate order i, f, c, o, at each step t:

        i = σ(x_t·W_i + h·U_i + b_i)        input gate
        f = σ(x_t·W_f + h·U_f + b_f)        forget gate
        g = tanh(x_t·W_c + h·U_c + b_c)     candidate cell
        o = σ(x_t·W_o + h·U_o + b_o)        output gate
        c_t = f ⊙ c_{t-1} + i ⊙ g
        h_t = o ⊙ tanh(c_t)

    (σ is ``recurrent_activation``, tanh is ``activation``.) The four pre-activations come from
    one GEMM per step, h·[U_i U_f U_c U_o], added to the input projection of all steps.

    Backward (BPTT; ∂h_t, ∂c_t arrive from the output of step t and from step t + 1):

        ∂o       = ∂h_t ⊙ tanh(c_t)
        ∂c_t    += ∂h_t ⊙ o ⊙ (1 - tanh²(c_t))
        ∂i       = ∂c_t ⊙ g,     ∂g = ∂c_t ⊙ i,     ∂f = ∂c_t ⊙ c_{t-1}
        ∂c_{t-1} = ∂c_t ⊙ f
        ∂z       = [∂i ⊙ i(1-i), ∂f ⊙ f(1-f), ∂g ⊙ (1-g²), ∂o ⊙ o(1-o)]   (pre-activations)
        ∂h_{t-1} = ∂z · Uᵀ                                            (one GEMM per step)
        ∂W = Σ_t x_tᵀ·∂z_t, ∂U = Σ_t h_{t-1}ᵀ·∂z_t, ∂b = Σ ∂z_t, ∂x_t = ∂z_t·Wᵀ   (one GEMM each)

    Inputs: x (batch, steps, features), h0, c0 (batch, u), W (features, 4u), U (u, 4u),
    b (4u,) or absent. Outputs: y (batch, steps, u), the last h and the last c (batch, u).
    """

    kernel_position = 3

    def __init__(self, activation: str, recurrent_activation: str, mask=None, go_backwards=False,
                 zero_output_for_mask=False):
        super().__init__(mask, go_backwards, zero_output_for_mask)
        self.activation, self.recurrent_activation = activation, recurrent_activation

    def forward(self, x, h0, c0, W, U, b=None):
        xp = get_array_module(x)
        steps, batch, units = x.shape[1], x.shape[0], U.shape[0]
        keep = self._keep(xp)
        kernel = _lstm_kernels(xp, self.activation, self.recurrent_activation)
        W, U = _swap_c_o(W, units), _swap_c_o(U, units)
        b = None if b is None else _swap_c_o(b, units)
        # σ(z) = ½·tanh(½z) + ½: with the inner ½ folded into copies of the σ columns of W, U
        # and b, one tanh call covers all four gates of a step (kept: unscaled W, U for backward).
        halve = kernel is None and (self.recurrent_activation, self.activation) == ("sigmoid", "tanh")
        W_step, U_step, b_step = W, U, b
        if halve:
            W_step, U_step = W.copy(), U.copy()
            W_step[:, :3 * units] *= 0.5
            U_step[:, :3 * units] *= 0.5
            if b is not None:
                b_step = b.copy()
                b_step[:3 * units] *= 0.5
        XT, A = _project(xp, x, W_step, self.go_backwards)  # A: pre-activations, then gates, in place
        if b is not None:
            A += b_step[:, None]
        UT_step = xp.ascontiguousarray(U_step.T)
        H = xp.empty((steps + 1, units, batch), dtype=x.dtype)  # hᵀ of every step, h0 first
        C = workspace.empty_like(H)  # cᵀ likewise
        TC = workspace.empty_like(H[1:])  # tanh(c_t), kept for backward
        H[0], C[0] = h0.T, c0.T
        recurrent = xp.empty((4 * units, batch), dtype=x.dtype)
        scratch = xp.empty((units, batch), dtype=x.dtype)
        gates = A.reshape(steps, 4, units, batch)  # gates[t] unpacks into the i, f, o, c blocks
        for t in range(steps):
            a = A[t]
            xp.matmul(UT_step, H[t], out=recurrent)  # (h_{t-1}·U)ᵀ = Uᵀ·h_{t-1}ᵀ
            if kernel is not None:  # the whole step below, and a += h·U, in one CuPy kernel
                kernel[0](C[t], H[t], True if keep is None else keep[t], units * batch, recurrent,
                          C[t + 1], TC[t], H[t + 1], a)
                continue
            a += recurrent
            if halve:  # i, f, o = ½·tanh(½z) + ½ and g = tanh(z), the ½z already in a
                xp.tanh(a, out=a)
                sigmoid_gates = a[:3 * units]
                sigmoid_gates *= 0.5
                sigmoid_gates += 0.5
            else:
                _activate(xp, self.recurrent_activation, a[:3 * units])
                _activate(xp, self.activation, a[3 * units:])
            i, f, o, g = gates[t]
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
                _activate(xp, self.activation, TC[t])
            xp.multiply(o, TC[t], out=h)
            if keep is not None:  # masked rows carry h and c through
                xp.copyto(c, C[t], where=self.drop[t])
                xp.copyto(h, H[t], where=self.drop[t])
        outputs = self._outputs(xp, H, keep), H[steps].T, C[steps].T.copy()
        if not self.will_backward():
            workspace.release(A, C, TC)
            return outputs
        self.XT, self.A, self.H, self.C, self.TC = XT, A, H, C, TC
        self.W, self.U, self.keep, self.has_bias = W, U, keep, b is not None
        return outputs

    def backward(self, gy, gh_last, gc_last):
        xp = get_array_module(self.H)
        A, H, C, TC, U, keep = self.A, self.H, self.C, self.TC, self.U, self.keep
        steps, units = A.shape[0], H.shape[1]
        add_output_grad = self._output_grad(xp, gy, keep)
        gh = xp.zeros_like(H[0]) if gh_last is None else _state_in(gh_last)
        gc = xp.zeros_like(C[0]) if gc_last is None else _state_in(gc_last)
        D = workspace.empty_like(A)  # ∂zᵀ for every step, in the internal order i, f, o, c
        scratch, scratch4 = xp.empty_like(gh), xp.empty_like(A[0])
        default = (self.recurrent_activation, self.activation) == ("sigmoid", "tanh")
        passed_h, passed_c = xp.empty_like(gh), xp.empty_like(gc)
        kernel = _lstm_kernels(xp, self.activation, self.recurrent_activation)
        gates, gate_grads = A.reshape(steps, 4, units, -1), D.reshape(steps, 4, units, -1)
        for t in range(steps - 1, -1, -1):
            add_output_grad(t, gh)
            a, d = A[t], D[t]
            if kernel is not None:
                kernel[1](C[t], TC[t], gh, True if keep is None else keep[t], gh.size, a,
                          gc, passed_h, d)
                xp.matmul(U, d, out=gh)
                gh += passed_h
                continue
            if keep is not None:  # a masked step hands ∂h_t, ∂c_t straight to step t - 1
                xp.multiply(gh, self.drop[t], out=passed_h)
                xp.multiply(gc, self.drop[t], out=passed_c)
                gh *= keep[t]
                gc *= keep[t]
            i, f, o, g = gates[t]
            di, df, do, dg = gate_grads[t]
            # h_t = o ⊙ tanh(c_t):  ∂o = ∂h ⊙ tanh(c_t),  ∂c_t += ∂h ⊙ o ⊙ tanh'(c_t)
            xp.multiply(gh, TC[t], out=do)
            _derivative(xp, self.activation, TC[t], scratch)
            scratch *= o
            scratch *= gh
            gc += scratch
            # c_t = f ⊙ c_{t-1} + i ⊙ g:  ∂i = ∂c ⊙ g,  ∂f = ∂c ⊙ c_{t-1},  ∂g = ∂c ⊙ i
            xp.multiply(gc, g, out=di)
            xp.multiply(gc, C[t], out=df)
            xp.multiply(gc, i, out=dg)
            gc *= f  # ∂c_{t-1} = ∂c_t ⊙ f
            # through the activations to the pre-activations z
            if default:  # σ' = s - s² on i, f, o and tanh' = 1 - g² on g, from one a²
                xp.multiply(a, a, out=scratch4)
                xp.subtract(a[:3 * units], scratch4[:3 * units], out=scratch4[:3 * units])
                xp.subtract(1, scratch4[3 * units:], out=scratch4[3 * units:])
                d *= scratch4
            else:
                d[:3 * units] *= _derivative(xp, self.recurrent_activation, a[:3 * units], scratch4[:3 * units])
                dg *= _derivative(xp, self.activation, g, scratch)
            # z = x_t·W + h_{t-1}·U + b:  ∂h_{t-1}ᵀ = U·∂z_tᵀ
            xp.matmul(U, d, out=gh)
            if keep is not None:
                gh += passed_h
                gc += passed_c
        workspace.release(A, C, TC)
        Dc = _side_by_side(xp, D)
        workspace.release(D)
        gx, gW = self._input_grads(xp, self.XT, Dc, self.W)
        gU = self._recurrent_grad(xp, H, Dc)
        grads = (gx, gh.T if self.needs_input_grad[1] else None, gc.T if self.needs_input_grad[2] else None,
                 None if gW is None else _swap_c_o(gW, units), None if gU is None else _swap_c_o(gU, units))
        if self.has_bias:
            grads += (_swap_c_o(Dc.sum(axis=1), units) if self.needs_input_grad[5] else None,)
        workspace.release(Dc)
        return grads


# --- GRU ---------------------------------------------------------------------------------------

class GRUFunction(_Recurrent):
    """Gated recurrent unit over a whole sequence (Cho et al., 2014), Keras' ``reset_after=True``.

    Forward, Keras' gate order z, r, h, input bias b and recurrent bias b' (the rows of the
    (2, 3u) bias), at each step t:

        z  = σ(x_t·W_z + b_z + h·U_z + b'_z)            update gate
        r  = σ(x_t·W_r + b_r + h·U_r + b'_r)            reset gate
        ĥ  = tanh(x_t·W_h + b_h + r ⊙ (h·U_h + b'_h))   candidate (reset after the product)
        h_t = z ⊙ h_{t-1} + (1 - z) ⊙ ĥ

    The recurrent part q = h·U + b' of all three gates is one GEMM per step.

    Backward (BPTT; ∂h_t from the output of step t and from step t + 1):

        ∂z       = ∂h_t ⊙ (h_{t-1} - ĥ)
        ∂ĥ       = ∂h_t ⊙ (1 - z)
        ∂a_h     = ∂ĥ ⊙ (1 - ĥ²)                        a_h: the pre-activation of ĥ
        ∂r       = ∂a_h ⊙ q_h,       ∂q_h = ∂a_h ⊙ r
        ∂a_z     = ∂z ⊙ z(1-z),      ∂a_r = ∂r ⊙ r(1-r)
        ∂P       = [∂a_z, ∂a_r, ∂a_h]   (input part),  ∂Q = [∂a_z, ∂a_r, ∂q_h]   (recurrent part)
        ∂h_{t-1} = ∂h_t ⊙ z + ∂Q · Uᵀ                   (one GEMM per step)
        ∂W = Σ x_tᵀ·∂P_t, ∂U = Σ h_{t-1}ᵀ·∂Q_t, ∂b = Σ ∂P_t, ∂b' = Σ ∂Q_t, ∂x_t = ∂P_t·Wᵀ

    Inputs: x (batch, steps, features), h0 (batch, u), W (features, 3u), U (u, 3u), b (2, 3u)
    or absent. Outputs: y (batch, steps, u) and the last state h (batch, u).
    """

    kernel_position = 2

    def __init__(self, activation: str, recurrent_activation: str, mask=None, go_backwards=False,
                 zero_output_for_mask=False):
        super().__init__(mask, go_backwards, zero_output_for_mask)
        self.activation, self.recurrent_activation = activation, recurrent_activation

    def forward(self, x, h0, W, U, b=None):
        xp = get_array_module(x)
        steps, batch, units = x.shape[1], x.shape[0], U.shape[0]
        keep = self._keep(xp)
        XT, A = _project(xp, x, W, self.go_backwards)  # input part, then gates z, r, ĥ in place
        if b is not None:
            A += b[0][:, None]
        Q = workspace.empty_like(A)  # recurrent part h·U + b', kept for backward (q_h)
        H = xp.empty((steps + 1, units, batch), dtype=x.dtype)
        H[0] = h0.T
        UT = xp.ascontiguousarray(U.T)
        scratch = xp.empty((units, batch), dtype=x.dtype)
        kernel = _gru_kernels(xp, self.activation, self.recurrent_activation)
        recurrent_bias = None
        if kernel is not None:
            recurrent_bias = b[1] if b is not None else xp.zeros(3 * units, dtype=x.dtype)
        for t in range(steps):
            a, q, h = A[t], Q[t], H[t + 1]
            xp.matmul(UT, H[t], out=q)  # (h_{t-1}·U)ᵀ = Uᵀ·h_{t-1}ᵀ
            if kernel is not None:  # the whole step below, and q += b', in one CuPy kernel
                kernel[0](H[t], True if keep is None else keep[t], units, batch, recurrent_bias, h, a, q)
                continue
            if b is not None:
                q += b[1][:, None]
            a[:2 * units] += q[:2 * units]
            _activate(xp, self.recurrent_activation, a[:2 * units])
            z, r, hh = a[:units], a[units:2 * units], a[2 * units:]
            # ĥ = tanh(x·W_h + b_h + r ⊙ q_h)
            xp.multiply(r, q[2 * units:], out=scratch)
            hh += scratch
            _activate(xp, self.activation, hh)
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

    def backward(self, gy, gh_last):
        xp = get_array_module(self.H)
        A, Q, H, U, keep = self.A, self.Q, self.H, self.U, self.keep
        steps, units, batch = A.shape[0], H.shape[1], H.shape[2]
        add_output_grad = self._output_grad(xp, gy, keep)
        gh = xp.zeros_like(H[0]) if gh_last is None else _state_in(gh_last)
        DP, DQ = workspace.empty_like(A), workspace.empty_like(Q)
        direct, scratch = xp.empty_like(gh), xp.empty_like(gh)
        scratch2 = xp.empty_like(A[0, :2 * units])
        kernel = _gru_kernels(xp, self.activation, self.recurrent_activation)
        for t in range(steps - 1, -1, -1):
            add_output_grad(t, gh)
            a, q, dp, dq = A[t], Q[t], DP[t], DQ[t]
            if kernel is not None:
                kernel[1](H[t], gh, True if keep is None else keep[t], gh.size, a, q, direct, dp, dq)
                xp.matmul(U, dq, out=gh)
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
            dhh *= _derivative(xp, self.activation, hh, scratch)
            # a_h = x·W_h + b_h + r ⊙ q_h:  ∂r = ∂a_h ⊙ q_h,  ∂q_h = ∂a_h ⊙ r
            xp.multiply(dhh, q[2 * units:], out=dr)
            xp.multiply(dhh, r, out=dq[2 * units:])
            # z, r = σ(a_z), σ(a_r); the same ∂a reaches the input and the recurrent part
            dp[:2 * units] *= _derivative(xp, self.recurrent_activation, a[:2 * units], scratch2)
            dq[:2 * units] = dp[:2 * units]
            if keep is not None:  # a masked step: no gate gradient, ∂h_t goes straight through
                dp *= keep[t]
                dq *= keep[t]
                xp.copyto(direct, gh, where=self.drop[t])
            # q = h_{t-1}·U + b':  ∂h_{t-1}ᵀ = (∂h ⊙ z)ᵀ + U·∂Q_tᵀ
            xp.matmul(U, dq, out=gh)
            gh += direct
        workspace.release(A, Q)
        DPc, DQc = _side_by_side(xp, DP), _side_by_side(xp, DQ)
        workspace.release(DP, DQ)
        gx, gW = self._input_grads(xp, self.XT, DPc, self.W)
        grads = (gx, gh.T if self.needs_input_grad[1] else None, gW, self._recurrent_grad(xp, H, DQc))
        if self.has_bias:
            grads += (xp.stack([DPc.sum(axis=1), DQc.sum(axis=1)]) if self.needs_input_grad[4] else None,)
        workspace.release(DPc, DQc)
        return grads


# --- public functions ----------------------------------------------------------------------------

def _check(op: str, x, states: dict, weights: dict, mask) -> None:
    """Shapes checked once, at the boundary, with what was expected and what came."""
    if x.ndim != 3:
        raise ValueError(f"{op}: expected x of shape (batch, steps, features), got shape {x.shape}")
    batch, steps, features = x.shape
    for name, (array, shape) in {**states, **weights}.items():
        if array is not None and tuple(array.shape) != shape:
            raise ValueError(f"{op}: expected {name} of shape {shape} for x of shape {x.shape}, "
                             f"got shape {tuple(array.shape)}")
    if mask is not None and tuple(mask.shape) != (batch, steps):
        raise ValueError(f"{op}: expected a mask of shape (batch, steps) = {(batch, steps)}, "
                         f"got shape {tuple(mask.shape)}")


def _mask_array(mask):
    if mask is None:
        return None
    mask = mask.data if isinstance(mask, Tensor) else mask
    return mask.astype(bool, copy=False) if mask.dtype != bool else mask


def simple_rnn(x, h0, kernel, recurrent_kernel, bias=None, *, mask=None, go_backwards: bool = False,
               zero_output_for_mask: bool = False, activation="tanh") -> tuple[Tensor, Tensor]:
    """h_t = act(x_t·W + h_{t-1}·U + b) over a sequence; see SimpleRNNFunction for the math.

    Args:
        x: (batch, steps, features). h0: (batch, units). kernel: (features, units).
        recurrent_kernel: (units, units). bias: (units,) or None.
        mask: optional bool (batch, steps); False steps carry h through (Keras 3 rules).
        go_backwards: process the steps last to first (outputs in that order, as Keras).
        zero_output_for_mask: zero outputs at masked steps instead of repeating the last one.
        activation: "tanh", "sigmoid", "relu" or "linear".
    Returns:
        (outputs (batch, steps, units), h (batch, units)).
    """
    x, h0, kernel, recurrent_kernel = (as_tensor(a) for a in (x, h0, kernel, recurrent_kernel))
    batch, units = x.shape[0], kernel.shape[-1]
    _check("simple_rnn", x, {"h0": (h0, (batch, units))},
           {"kernel": (kernel, (x.shape[-1], units)), "recurrent_kernel": (recurrent_kernel, (units, units)),
            "bias": (bias, (units,))}, mask)
    name = _fused_name("simple_rnn", "activation", activation)
    fn = SimpleRNNFunction(name, _mask_array(mask), go_backwards, zero_output_for_mask)
    args = (x, h0, kernel, recurrent_kernel) + (() if bias is None else (bias,))
    return fn.apply(*args)


def lstm(x, h0, c0, kernel, recurrent_kernel, bias=None, *, mask=None, go_backwards: bool = False,
         zero_output_for_mask: bool = False, activation="tanh",
         recurrent_activation="sigmoid") -> tuple[Tensor, Tensor, Tensor]:
    """An LSTM over a sequence, Keras' gate order i, f, c, o; see LSTMFunction for the math.

    Args:
        x: (batch, steps, features). h0, c0: (batch, units). kernel: (features, 4·units).
        recurrent_kernel: (units, 4·units). bias: (4·units,) or None.
        mask, go_backwards, zero_output_for_mask: as simple_rnn.
        activation: of the candidate g and of c_t in h_t; recurrent_activation: of i, f, o.
    Returns:
        (outputs (batch, steps, units), h (batch, units), c (batch, units)).
    """
    x, h0, c0, kernel, recurrent_kernel = (as_tensor(a) for a in (x, h0, c0, kernel, recurrent_kernel))
    batch, units = x.shape[0], recurrent_kernel.shape[0]
    _check("lstm", x, {"h0": (h0, (batch, units)), "c0": (c0, (batch, units))},
           {"kernel": (kernel, (x.shape[-1], 4 * units)),
            "recurrent_kernel": (recurrent_kernel, (units, 4 * units)), "bias": (bias, (4 * units,))}, mask)
    fn = LSTMFunction(_fused_name("lstm", "activation", activation),
                      _fused_name("lstm", "recurrent_activation", recurrent_activation),
                      _mask_array(mask), go_backwards, zero_output_for_mask)
    args = (x, h0, c0, kernel, recurrent_kernel) + (() if bias is None else (bias,))
    return fn.apply(*args)


def gru(x, h0, kernel, recurrent_kernel, bias=None, *, mask=None, go_backwards: bool = False,
        zero_output_for_mask: bool = False, activation="tanh",
        recurrent_activation="sigmoid") -> tuple[Tensor, Tensor]:
    """A GRU over a sequence, Keras' ``reset_after=True``, gates z, r, h; see GRUFunction.

    Args:
        x: (batch, steps, features). h0: (batch, units). kernel: (features, 3·units).
        recurrent_kernel: (units, 3·units). bias: (2, 3·units) (input bias, recurrent bias) or None.
        mask, go_backwards, zero_output_for_mask: as simple_rnn.
        activation: of the candidate ĥ; recurrent_activation: of z and r.
    Returns:
        (outputs (batch, steps, units), h (batch, units)).
    """
    x, h0, kernel, recurrent_kernel = (as_tensor(a) for a in (x, h0, kernel, recurrent_kernel))
    batch, units = x.shape[0], recurrent_kernel.shape[0]
    _check("gru", x, {"h0": (h0, (batch, units))},
           {"kernel": (kernel, (x.shape[-1], 3 * units)),
            "recurrent_kernel": (recurrent_kernel, (units, 3 * units)), "bias": (bias, (2, 3 * units))}, mask)
    fn = GRUFunction(_fused_name("gru", "activation", activation),
                     _fused_name("gru", "recurrent_activation", recurrent_activation),
                     _mask_array(mask), go_backwards, zero_output_for_mask)
    args = (x, h0, kernel, recurrent_kernel) + (() if bias is None else (bias,))
    return fn.apply(*args)


def _fused_name(op: str, argument: str, activation) -> str:
    name = _activation_name(activation)
    if name is None:
        raise ValueError(f"{op}: the fused op supports {argument} in {FUSED_ACTIVATIONS}, got "
                         f"{activation!r}; use minidl.functional.recurrent_reference for others")
    return name


# --- CuPy: one fused elementwise kernel per step ---------------------------------------------------

_KERNELS: dict = {}

_LSTM_FORWARD = r"""
    // entry i of the transposed state (units, batch), one of `entries` = units·batch; gate block
    // k of z = gates (Wᵀx + b) + rec (Uᵀh) is rows k·units onwards, so entry i of it is at
    // k·entries + i. Internal order i, f, o, c.
    T zi = gates[i] + rec[i], zf = gates[entries + i] + rec[entries + i];
    T zo = gates[2 * entries + i] + rec[2 * entries + i];
    T zg = gates[3 * entries + i] + rec[3 * entries + i];
    T gi = 1 / (1 + exp(-zi)), gf = 1 / (1 + exp(-zf)), go = 1 / (1 + exp(-zo)), gg = tanh(zg);
    gates[i] = gi; gates[entries + i] = gf; gates[2 * entries + i] = go; gates[3 * entries + i] = gg;
    T c_new = gf * c_prev + gi * gg;
    T tc_new = tanh(c_new);
    tc = tc_new;
    c = keep ? c_new : c_prev;
    h = keep ? go * tc_new : h_prev;
"""

_LSTM_BACKWARD = r"""
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
"""

_GRU_FORWARD = r"""
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
"""

_GRU_BACKWARD = r"""
    T z = gates[i], r = gates[entries + i], hh = gates[2 * entries + i];
    T dh = keep ? gh : (T)0;
    T dz = dh * (h_prev - hh) * z * (1 - z);
    T dah = dh * (1 - z) * (1 - hh * hh);
    T dr = dah * q[2 * entries + i] * r * (1 - r);
    dp[i] = dz; dp[entries + i] = dr; dp[2 * entries + i] = dah;
    dq[i] = dz; dq[entries + i] = dr; dq[2 * entries + i] = dah * r;
    direct = keep ? dh * z : gh;
"""


def _lstm_kernels(xp, activation: str, recurrent_activation: str):
    """(forward, backward) CuPy kernels for the default activations on CuPy data, else None."""
    if xp.__name__ != "cupy" or (activation, recurrent_activation) != ("tanh", "sigmoid"):
        return None
    if "lstm" not in _KERNELS:
        _KERNELS["lstm"] = (
            xp.ElementwiseKernel("T c_prev, T h_prev, bool keep, int32 entries, raw T rec",
                                 "T c, T tc, T h, raw T gates", _LSTM_FORWARD, "minidl_lstm_forward"),
            xp.ElementwiseKernel("T c_prev, T tc, T gh, bool keep, int32 entries, raw T gates",
                                 "T gc, T passed, raw T dz", _LSTM_BACKWARD, "minidl_lstm_backward"))
    return _KERNELS["lstm"]


def _gru_kernels(xp, activation: str, recurrent_activation: str):
    """(forward, backward) CuPy kernels for the default activations on CuPy data, else None."""
    if xp.__name__ != "cupy" or (activation, recurrent_activation) != ("tanh", "sigmoid"):
        return None
    if "gru" not in _KERNELS:
        _KERNELS["gru"] = (
            xp.ElementwiseKernel("T h_prev, bool keep, int32 units, int32 batch, raw T bias_r",
                                 "T h, raw T gates, raw T q", _GRU_FORWARD, "minidl_gru_forward"),
            xp.ElementwiseKernel("T h_prev, T gh, bool keep, int32 entries, raw T gates, raw T q",
                                 "T direct, raw T dp, raw T dq", _GRU_BACKWARD, "minidl_gru_backward"))
    return _KERNELS["gru"]
