"""Dropout masks fixed over the steps, one per gate, for the input and for the recurrent state.

Gal & Ghahramani (2016), "A Theoretically Grounded Application of Dropout in Recurrent Neural
Networks": a recurrent layer drops the same units at every step of a sequence, in the input x_t
and in the state h_{t-1} it feeds back. Keras 3 (``keras.src.layers.rnn.dropout_rnn_cell``, and
the cells' ``implementation=1`` branch that ``recurrent_dropout`` selects) draws one mask per
gate, G of them (1 SimpleRNN, 4 LSTM in the order i, f, c, o, 3 GRU in the order z, r, h), and
computes each gate's products from its own dropped copy:

    x_t·W  becomes  [(x_t ⊙ m_1)·W_1, …, (x_t ⊙ m_G)·W_G]       m_g (batch, features)
    h·U    becomes  [(h ⊙ n_1)·U_1, …, (h ⊙ n_G)·U_G]           n_g (batch, units)

(W_g, U_g: gate g's column block.) A mask holds 0 and 1/(1 - rate) (inverted dropout) and is
constant, so it gets no gradient; backward multiplies by it once more:

    ∂x_t = Σ_g (∂z_g·W_gᵀ) ⊙ m_g,   ∂W_g = Σ_t (x_t ⊙ m_g)ᵀ·∂z_g          (likewise h, U, n_g)

The products per gate cost the same flops as the fused product of all gates; they are only
more calls. Without masks the ops keep their one fused product: these helpers fall through to
it when given None. Inside, a mask is held transposed like the states, (G, features or units,
batch), contiguous.
"""
from __future__ import annotations

import minidl.functional as F
from minidl.backend import Array
from minidl.tensor import Tensor


def masks_in(xp, masks, op: str, name: str, expected: tuple, dtype) -> Array | None:
    """Masks (G, batch, n) given by the caller -> the loops' layout (G, n, batch), or None.

    Raises:
        ValueError: masks of another shape than ``expected``, naming the op and the argument.
    """
    if masks is None:
        return None
    masks = masks.data if isinstance(masks, Tensor) else masks
    if tuple(masks.shape) != tuple(expected):
        raise ValueError(f"{op}: expected {name} of shape (gates, batch, n) = {tuple(expected)}, "
                         f"got shape {tuple(masks.shape)}")
    return xp.ascontiguousarray(xp.asarray(masks, dtype=dtype).transpose(0, 2, 1))


def masks_data(masks) -> Array | None:
    """Masks given as a Tensor or an array, as the array (constants: no gradient), or None."""
    return masks.data if isinstance(masks, Tensor) else masks


def block(gate: int, width: int) -> slice:
    """The rows (or columns) of gate ``gate`` among blocks of ``width``."""
    return slice(gate * width, (gate + 1) * width)


def project_inputs_dropped(xp, XT: Array, W: Array, masks: Array, out: Array) -> Array:
    """out[:, block g] ← W_gᵀ·(x_t ⊙ m_g)ᵀ for every step and gate; XT (steps, features, batch)."""
    width = W.shape[1] // masks.shape[0]
    dropped = xp.empty_like(XT)
    for gate, mask in enumerate(masks):
        xp.multiply(XT, mask, out=dropped)
        # into a fresh array, then copied: out[:, block] is not contiguous, which NumPy's matmul
        # takes as out= but CuPy's need not
        out[:, block(gate, width)] = xp.matmul(W[:, block(gate, width)].T, dropped)
    return out


def step_product(xp, a: Array, b: Array, out: Array) -> Array:
    """out ← a·b, 2-D. ``dot`` where out is C-contiguous and a, b and out share one dtype (the
    only out= it takes): the same GEMM as matmul with about 1 µs less overhead a call, a hundred
    calls a step of the LSTM(128) of benchmarks/recurrent.py (28.3 against 29.3 µs and 26.1
    against 27.2 for its two products, best of 200 loops of 50); otherwise matmul, which also
    casts (a float64 gradient into a float32 op's state, float32 data with float64 kernels)."""
    if out.flags.c_contiguous and a.dtype == b.dtype == out.dtype:
        return xp.dot(a, b, out=out)
    return xp.matmul(a, b, out=out)


def recurrent_product(xp, UT: Array, h: Array, out: Array, masks: Array | None, scratch: Array) -> Array:
    """out ← Uᵀ·hᵀ (one GEMM), or per gate U_gᵀ·(h ⊙ n_g)ᵀ; h, scratch (units, batch)."""
    if masks is None:
        return step_product(xp, UT, h, out)
    width = UT.shape[0] // masks.shape[0]
    for gate, mask in enumerate(masks):
        xp.multiply(h, mask, out=scratch)
        xp.matmul(UT[block(gate, width)], scratch, out=out[block(gate, width)])
    return out


def state_grad(xp, U: Array, grad_q: Array, out: Array, masks: Array | None, scratch: Array) -> Array:
    """out ← U·∂qᵀ (one GEMM), or Σ_g (U_g·∂q_gᵀ) ⊙ n_g: the gradient that reaches h_{t-1}."""
    if masks is None:
        return step_product(xp, U, grad_q, out)
    width = U.shape[1] // masks.shape[0]
    out.fill(0)
    for gate, mask in enumerate(masks):
        xp.matmul(U[:, block(gate, width)], grad_q[block(gate, width)], out=scratch)
        scratch *= mask
        out += scratch
    return out


def dropped_side_by_side(states: Array, mask: Array | None) -> Array:
    """states (n, steps·batch) side by side, times a (n, batch) mask at every step (a new array),
    or ``states`` itself without a mask."""
    if mask is None:
        return states
    n, batch = mask.shape
    return (states.reshape(n, -1, batch) * mask[:, None, :]).reshape(n, -1)


def gate_products(x_t, kernel, masks=None) -> Tensor:
    """x_t·W for the reference cells, in primitive ops: one product, or with masks (G, batch, n)
    the per-gate products [(x_t ⊙ m_1)·W_1, …, (x_t ⊙ m_G)·W_G] side by side (batch, G·width)."""
    if masks is None:
        return F.matmul(x_t, kernel)
    width = kernel.shape[-1] // len(masks)
    return F.concatenate([F.matmul(x_t * mask, kernel[:, block(gate, width)])
                          for gate, mask in enumerate(masks)], axis=-1)
