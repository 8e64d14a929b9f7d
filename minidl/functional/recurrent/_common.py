"""What the three fused recurrent ops share: the base Function, masks, the input projection.

Inside, the loops run time-major and *transposed*: a step's state is hᵀ (units, batch) and its
gates zᵀ = Wᵀ·x_tᵀ + Uᵀ·hᵀ (gates·units, batch; the LSTM computes them as one product with all its
weights, see LSTMFunction), so that each gate block is a run of whole rows,
contiguous in memory. The gate arithmetic is a dozen small elementwise ops per step, and NumPy
runs each one faster on a contiguous block than on the column slice that a (batch, gates·units)
layout would give (the LSTM step of benchmarks/recurrent.py is where it shows). The equations
in the docstrings are written batch-major, as Keras states them.

The large internal buffers (the gates of every step, ∂z of every step and their side-by-side
copies) come from ``minidl.workspace`` and go back to it when backward is done, so the next
call reuses their memory instead of faulting in fresh pages (see that module for why).

Masks follow Keras 3 (``keras.src.backend.*.rnn``): ``mask`` is bool (batch, steps); at a False
step every state is carried through unchanged and the output repeats the previous output
(zeros before the first valid step), or is zero when ``zero_output_for_mask``. With
``go_backwards`` the steps (and the mask) are processed last to first and the outputs come out
in that processed order, as Keras returns them. ``unroll`` is the same loop for the reference
cells, built from primitive ops.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

import minidl.functional as F
from minidl import workspace
from minidl.backend import Array
from minidl.function import Function
from minidl.functional.recurrent._dropout import block, dropped_side_by_side, project_inputs_dropped
from minidl.tensor import Tensor, as_tensor

# Activations the fused ops differentiate by hand, each from its output y alone.
FUSED_ACTIVATIONS = ("tanh", "sigmoid", "relu", "linear")


# --- activations -----------------------------------------------------------------------------------

def fused_activation_name(activation) -> str | None:
    """The fused name of an activation given by name or as minidl.functional's function, or None
    when the fused ops do not implement it."""
    if activation is None:
        return "linear"
    if isinstance(activation, str):
        return activation if activation in FUSED_ACTIVATIONS else None
    name = getattr(activation, "__name__", None)
    module = getattr(activation, "__module__", "")
    return name if name in FUSED_ACTIVATIONS and module.startswith("minidl.functional") else None


def can_fuse(*activations) -> bool:
    """True when the fused ops implement every activation given (else use the reference cells)."""
    return all(fused_activation_name(a) is not None for a in activations)


def fused_activation(op: str, argument: str, activation) -> str:
    """The fused name of ``activation``, or a ValueError naming the op and the argument."""
    name = fused_activation_name(activation)
    if name is None:
        raise ValueError(f"{op}: the fused op supports {argument} in {FUSED_ACTIVATIONS}, got "
                         f"{activation!r}; use {op}_reference (minidl.functional.recurrent) for others")
    return name


def activate(xp, name: str, a: Array) -> None:
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


def derivative(xp, name: str, y: Array, out: Array) -> Array:
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


# --- layouts -------------------------------------------------------------------------------------

def batch_last(x: Array) -> Array:
    """(batch, steps, ...) -> (steps, ..., batch), a view: the loops' transposed layout."""
    return x.transpose((1,) + tuple(range(2, x.ndim)) + (0,))


def time_major(x: Array, go_backwards: bool) -> Array:
    """(batch, steps, ...) -> (steps, ..., batch) in processing order, as a view."""
    x = batch_last(x)
    return x[::-1] if go_backwards else x


def project_inputs(xp, x: Array, W: Array, go_backwards: bool, input_masks: Array | None = None,
                   bias: Array | None = None) -> tuple[Array, Array]:
    """Xᵀ (steps, features, batch) in processing order, and Wᵀ·x_tᵀ + b for every step (steps, G,
    batch), a workspace buffer: one batched GEMM; with per-gate dropout masks (G, features,
    batch), one per gate block (see _dropout.py).

    Without masks the bias rides in the GEMM, as the last row of [W; b] against a row of ones
    under Xᵀ: adding it afterwards, broadcast along the batch, was a pass of its own over every
    step's gates and cost more than the GEMM (240 µs against 170 on the (50, 512, 32) gates of
    benchmarks/recurrent.py's LSTM, before the LSTM took its bias into its step GEMM)."""
    time_major_x = time_major(x, go_backwards)
    steps, features, batch = time_major_x.shape
    projected = workspace.empty(xp, (steps, W.shape[1], batch), x.dtype)
    if input_masks is not None:
        XT = xp.ascontiguousarray(time_major_x)
        project_inputs_dropped(xp, XT, W, input_masks, projected)
        if bias is not None:  # one contiguous (G·batch) row per step, not a broadcast along batch
            rows = projected.reshape(steps, -1)
            rows += xp.repeat(bias, batch)
        return XT, projected
    if bias is None:
        XT = xp.ascontiguousarray(time_major_x)
        return XT, xp.matmul(W.T, XT, out=projected)
    XT_ones = xp.empty((steps, features + 1, batch), dtype=x.dtype)
    XT_ones[:, :features] = time_major_x
    XT_ones[:, features] = 1
    xp.matmul(xp.concatenate([W, bias[None]]).T, XT_ones, out=projected)
    return XT_ones[:, :features], projected


def row_sums(xp, matrix: Array) -> Array:
    """The sum of each row of ``matrix`` (G, n) as (G,): the bias gradients over all steps. A GEMV
    with a vector of ones, as NumPy's sum(axis=1) over a (512, 1600) ∂Z took 150 µs against the
    GEMV's 21 (the shapes of benchmarks/recurrent.py's LSTM)."""
    return matrix @ xp.ones(matrix.shape[1], dtype=matrix.dtype)


def side_by_side(xp, grad_z: Array) -> Array:
    """grad_z (steps, G, batch) -> (G, steps·batch): every step's ∂z side by side, so that each
    sum over steps is one GEMM (and the bias gradient the row sums). One transposing copy, into
    a workspace buffer: release the result when done."""
    steps, width, batch = grad_z.shape
    buffer = workspace.empty(xp, (width, steps, batch), grad_z.dtype)
    if xp is np and batch and grad_z.flags.c_contiguous:
        # each row of batch values as one element (np.void): NumPy's copy then moves whole rows,
        # where with floats it ran an inner loop of batch values per row (0.17 against 0.51 ms
        # best of 60 for the LSTM's (50, 512, 32) ∂Z)
        row = np.dtype((np.void, batch * grad_z.itemsize))
        np.copyto(buffer.view(row)[..., 0], grad_z.view(row)[..., 0].T)
    else:
        xp.copyto(buffer, grad_z.transpose(1, 0, 2))
    return buffer.reshape(width, steps * batch)


def transposed(xp, a: Array) -> Array:
    """aᵀ of a 2-D array, as a new C-contiguous one. On NumPy copied in blocks of 64 bytes' worth
    of a's rows, so that each block writes whole cache lines of the result, where one transposing
    copy wrote single values across all of it (the LSTM's (142, 512) Θ: 39 against 163 µs best
    of 200)."""
    if xp is not np:
        return xp.ascontiguousarray(a.T)
    out = np.empty((a.shape[1], a.shape[0]), dtype=a.dtype)
    rows = max(1, 64 // a.itemsize)
    for start in range(0, a.shape[0], rows):
        out[:, start:start + rows] = a[start:start + rows].T
    return out


def state_in(state: Array) -> Array:
    """A copy of a (batch, u) state as the loops hold it, (u, batch) contiguous: a copy, because
    the loops update it in place (ascontiguousarray would hand back a view when batch is 1)."""
    return state.T.copy()


# --- subnormal gradients ---------------------------------------------------------------------------

class SubnormalFlush:
    """Keeps a backward loop's ∂z out of the subnormal range, on NumPy.

    A gradient that flows back through many steps can shrink geometrically (a forget gate below
    one, only the last output in the loss), and once it passes float32's smallest normal number,
    2^-126 ≈ 1.2e-38, every GEMM and ufunc that reads the subnormal values runs the CPU's slow
    microcode path: the LSTM step over 1,000 steps of benchmarks/recurrent.py took 1.6 s, not
    0.4. PyTorch leaves the choice to the user (``torch.set_flush_denormal``); flushing in the
    CPU's control register would change every thread's arithmetic, so the loop rounds instead.

    Every ``CHECK_EVERY`` steps ``check`` looks at the states' smallest nonzero column maximum
    (a column of zeros, a padded sequence, is left out); once one is below √tiny (2^-63 in
    float32), ``flush`` rounds ∂z near zero from then on, as (∂z + s) - s with s = 2·tiny/eps
    (2^-102 in float32; just below s the spacing of floats is tiny, just above it 2·tiny):
    subnormals become 0 or -tiny, |∂z| ≥ 4·s/eps (2^-77) is unchanged, and a value between
    moves by at most max(tiny, one ulp of itself). A gradient that decays faster than about
    2^-4 a step can still hand a few GEMMs subnormals between two checks, and so can a gate
    saturated far enough while ∂h is large: slower steps, not different results. Rounding ∂h
    and ∂c as well measured slower (their ±tiny values kept decaying into subnormals). On CuPy
    it does nothing: GPUs run subnormals at full speed, and a check would wait for the device.
    """

    CHECK_EVERY = 16

    def __init__(self, xp, dtype):
        self.enabled, self.on = xp is np, False
        finfo = np.finfo(dtype)
        self.shift = np.asarray(2 * finfo.tiny / finfo.eps, dtype=dtype)
        self.threshold = float(np.sqrt(finfo.tiny))

    def check(self, step: int, *states: Array) -> None:
        """Turn flushing on, for good, once a nonzero column of a state (units, batch) is below √tiny."""
        if self.enabled and not self.on and step % self.CHECK_EVERY == 0:
            for state in states:
                column_max = np.abs(state).max(axis=0)
                if column_max.min() >= self.threshold:   # the usual case, in one reduction
                    continue
                nonzero = column_max[column_max > 0]
                if nonzero.size and float(nonzero.min()) < self.threshold:
                    self.on = True

    def flush(self, grad: Array) -> None:
        """grad ← (grad + s) - s in place, once ``check`` has turned flushing on."""
        if self.on:
            grad += self.shift
            grad -= self.shift


# --- the shared base -----------------------------------------------------------------------------

class RecurrentFunction(Function):
    """What the three fused ops share: the mask, the output rule, the gradients over all steps.

    Inside, every per-step array is transposed, (units or gates·units, batch); see the module
    docstring. Subclasses set ``kernel_position``, the input index of the kernel W (the
    recurrent kernel U follows it).

    ``input_masks`` and ``recurrent_masks`` are the per-gate dropout masks in the loops' layout
    (G, features or units, batch), in the gate order of the stored blocks, or None: one fused
    product then (see _dropout.py).
    """

    kernel_position: int

    def __init__(self, mask: Array | None, go_backwards: bool, zero_output_for_mask: bool,
                 input_masks: Array | None = None, recurrent_masks: Array | None = None):
        self.mask = mask
        self.go_backwards = go_backwards
        self.zero_output_for_mask = zero_output_for_mask
        self.input_masks, self.recurrent_masks = input_masks, recurrent_masks

    def _keep(self, xp) -> Array | None:
        """The mask as (steps, 1, batch) bool in processing order, or None; its negation goes to
        ``self.drop``, made once here so that no step allocates one."""
        self.drop = None
        if self.mask is None:
            return None
        keep = xp.ascontiguousarray(time_major(xp.asarray(self.mask, dtype=bool), self.go_backwards)[:, None])
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
        gy = xp.ascontiguousarray(batch_last(gy))  # (steps, u, batch); already in processing order
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

    def _input_grad(self, xp, grad_z_side_by_side: Array, W: Array, steps: int, batch: int) -> Array | None:
        """∂X = ∂Z·Wᵀ as (batch, steps, features), one GEMM over all steps from ∂Z, every step's
        ∂z side by side (see ``side_by_side``); with input dropout masks, one GEMM per gate,
        ∂X = Σ_g (∂Z_g·W_gᵀ) ⊙ m_g. None when x needs no gradient."""
        if not self.needs_input_grad[0]:
            return None
        masks = self.input_masks
        if masks is None:
            gx = W @ grad_z_side_by_side
        else:
            width = W.shape[1] // masks.shape[0]
            gx = sum(dropped_side_by_side(W[:, block(g, width)] @ grad_z_side_by_side[block(g, width)], masks[g])
                     for g in range(masks.shape[0]))
        gx = gx.reshape(-1, steps, batch)
        return xp.ascontiguousarray((gx[:, ::-1] if self.go_backwards else gx).transpose(2, 1, 0))

    def _input_grads(self, xp, XT: Array, grad_z_side_by_side: Array, W: Array) -> tuple:
        """(∂X, ∂W): ∂X as ``_input_grad``, and ∂W = Xᵀ·∂Z, one GEMM over all steps; with input
        dropout masks, ∂W_g = (X ⊙ m_g)ᵀ·∂Z_g."""
        steps, batch = XT.shape[0], XT.shape[2]
        masks = self.input_masks
        gx, gW = self._input_grad(xp, grad_z_side_by_side, W, steps, batch), None
        if self.needs_input_grad[self.kernel_position]:
            XT_side_by_side = XT.transpose(1, 0, 2).reshape(-1, steps * batch)
            if masks is None:  # (∂Z·X)ᵀ: the faster order, 230 µs against 350 for a ∂W of (13, 512)
                gW = (grad_z_side_by_side @ XT_side_by_side.T).T
            else:
                width = W.shape[1] // masks.shape[0]
                gW = xp.concatenate([dropped_side_by_side(XT_side_by_side, masks[g])
                                     @ grad_z_side_by_side[block(g, width)].T for g in range(masks.shape[0])], axis=1)
        return gx, gW

    def _recurrent_grad(self, xp, H: Array, grad_z_side_by_side: Array, masks="own") -> Array | None:
        """∂U = H_prevᵀ·∂Z (units, G): one GEMM over all steps; with recurrent dropout masks
        (``self.recurrent_masks`` unless others are given), ∂U_g = (H_prev ⊙ n_g)ᵀ·∂Z_g."""
        if not self.needs_input_grad[self.kernel_position + 1]:
            return None
        masks = self.recurrent_masks if isinstance(masks, str) else masks
        H_prev = side_by_side(xp, H[:-1])
        # ∂Uᵀ = ∂Z·H_prev rather than H_prevᵀ·∂Zᵀ: the faster order on the LSTM step of
        # benchmarks/recurrent.py
        if masks is None:
            gU = (grad_z_side_by_side @ H_prev.T).T
        else:
            width = grad_z_side_by_side.shape[0] // masks.shape[0]
            gU = xp.concatenate([(grad_z_side_by_side[block(g, width)] @ dropped_side_by_side(H_prev, m).T).T
                                 for g, m in enumerate(masks)], axis=1)
        workspace.release(H_prev)
        return gU


# --- CuPy: one fused elementwise kernel per step ---------------------------------------------------

_CUDA_STEPS: dict = {}  # kernel name -> cupy.ElementwiseKernel, made on first use


def cuda_step(xp, activations: tuple, name: str, source: tuple[str, str, str]):
    """The CUDA step kernel ``name`` for CuPy data, or None: on NumPy, or when the activations
    are not (tanh, sigmoid), the ones the kernel bodies spell out.

    ``source`` is (input parameters, output parameters, body) of a ``cupy.ElementwiseKernel``,
    made once and kept (CuPy compiles it on its first call).
    """
    if xp.__name__ != "cupy" or tuple(activations) != ("tanh", "sigmoid"):
        return None
    if name not in _CUDA_STEPS:
        _CUDA_STEPS[name] = xp.ElementwiseKernel(*source, name)
    return _CUDA_STEPS[name]


# --- checks at the boundary ----------------------------------------------------------------------

def check_shapes(op: str, x, states: dict, weights: dict, mask) -> None:
    """Shapes checked once, at the boundary, with what was expected and what came.

    ``states`` and ``weights`` map a name to (array or None, expected shape).
    """
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


def mask_array(mask) -> Array | None:
    """A mask given as a Tensor or an array, as a bool array (None stays None)."""
    if mask is None:
        return None
    mask = mask.data if isinstance(mask, Tensor) else mask
    return mask.astype(bool, copy=False) if mask.dtype != bool else mask


# --- the reference cells' loop -------------------------------------------------------------------

def unroll(step: Callable, x, states: list, mask, go_backwards: bool,
           zero_output_for_mask: bool) -> tuple[Tensor, list]:
    """Keras' rnn() loop in primitive ops, which autograd differentiates.

    ``step(x_t, *states) -> (output, new_states)``; returns (outputs (batch, steps, ...), states).
    """
    x = as_tensor(x)
    mask = mask_array(mask)
    steps = x.shape[1]
    order = range(steps - 1, -1, -1) if go_backwards else range(steps)
    outputs, previous = [], None
    for t in order:
        output, new_states = step(x[:, t], *states)
        if mask is None:
            states = new_states
        else:
            keep = mask[:, t][:, None]
            states = [F.where(keep, new, old) for new, old in zip(new_states, states)]
            if zero_output_for_mask:
                output = F.where(keep, output, output.data * 0)
            else:
                output = F.where(keep, output, output.data * 0 if previous is None else previous)
        outputs.append(output)
        previous = output
    return F.stack(outputs, axis=1), states
