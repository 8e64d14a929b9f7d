"""Reference recurrent cells built only from minidl.functional primitives, unrolled in time.

These say the same as the fused ops in ``minidl.functional.recurrent``, the autograd way: each
step is a handful of primitive ops (matmul, add, sigmoid, tanh, mul, where), and the engine
differentiates the unrolled graph. Tests check that both give the same values and gradients;
the layers also use these when an activation has no hand-derived derivative in the fused ops.

The loop over time follows Keras 3's ``rnn()`` step for step, masks included: at a masked step
the states are carried through, and the output repeats the previous output (zeros before the
first valid step), or is zero with ``zero_output_for_mask``.
"""
from __future__ import annotations

from typing import Callable

import minidl.functional as F
from minidl.tensor import Tensor, as_tensor


def simple_rnn_cell(x_t, h, kernel, recurrent_kernel, bias=None, activation=F.tanh) -> Tensor:
    """h_t = act(x_t·W + h·U + b); x_t (batch, features), h (batch, units)."""
    z = F.matmul(x_t, kernel) + F.matmul(h, recurrent_kernel)
    return activation(z if bias is None else z + bias)


def lstm_cell(x_t, h, c, kernel, recurrent_kernel, bias=None, activation=F.tanh,
              recurrent_activation=F.sigmoid) -> tuple[Tensor, Tensor]:
    """One LSTM step, Keras' gate order i, f, c, o; returns (h_t, c_t).

        i = σ(x_t·W_i + h·U_i + b_i),  f = σ(x_t·W_f + h·U_f + b_f)
        g = tanh(x_t·W_c + h·U_c + b_c),  o = σ(x_t·W_o + h·U_o + b_o)
        c_t = f ⊙ c + i ⊙ g,  h_t = o ⊙ tanh(c_t)
    """
    units = h.shape[-1]
    z = F.matmul(x_t, kernel) + F.matmul(h, recurrent_kernel)
    if bias is not None:
        z = z + bias
    i = recurrent_activation(z[:, :units])
    f = recurrent_activation(z[:, units:2 * units])
    g = activation(z[:, 2 * units:3 * units])
    o = recurrent_activation(z[:, 3 * units:])
    c_t = f * c + i * g
    return o * activation(c_t), c_t


def gru_cell(x_t, h, kernel, recurrent_kernel, bias=None, activation=F.tanh,
             recurrent_activation=F.sigmoid) -> Tensor:
    """One GRU step, Keras' ``reset_after=True``, gates z, r, h, bias (2, 3u); returns h_t.

        z = σ(x_t·W_z + b_z + h·U_z + b'_z),  r = σ(x_t·W_r + b_r + h·U_r + b'_r)
        ĥ = tanh(x_t·W_h + b_h + r ⊙ (h·U_h + b'_h)),  h_t = z ⊙ h + (1 - z) ⊙ ĥ
    """
    units = h.shape[-1]
    p = F.matmul(x_t, kernel)
    q = F.matmul(h, recurrent_kernel)
    if bias is not None:
        p, q = p + bias[0], q + bias[1]
    z = recurrent_activation(p[:, :units] + q[:, :units])
    r = recurrent_activation(p[:, units:2 * units] + q[:, units:2 * units])
    hh = activation(p[:, 2 * units:] + r * q[:, 2 * units:])
    return z * h + (1 - z) * hh


def _unroll(step: Callable, x, states: list, mask, go_backwards: bool,
            zero_output_for_mask: bool) -> tuple[Tensor, list]:
    """Keras' rnn() loop: ``step(x_t, *states) -> (output, new_states)``; returns (outputs, states)."""
    x = as_tensor(x)
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


def _mask(mask):
    if mask is None:
        return None
    return (mask.data if isinstance(mask, Tensor) else mask).astype(bool)


def _activation(activation) -> Callable:
    return F.get_activation(activation)


def simple_rnn_reference(x, h0, kernel, recurrent_kernel, bias=None, *, mask=None, go_backwards=False,
                         zero_output_for_mask=False, activation="tanh") -> tuple[Tensor, Tensor]:
    """Same arguments and results as ``minidl.functional.recurrent.simple_rnn``."""
    act = _activation(activation)

    def step(x_t, h):
        h = simple_rnn_cell(x_t, h, kernel, recurrent_kernel, bias, act)
        return h, [h]
    outputs, (h,) = _unroll(step, x, [as_tensor(h0)], _mask(mask), go_backwards, zero_output_for_mask)
    return outputs, h


def lstm_reference(x, h0, c0, kernel, recurrent_kernel, bias=None, *, mask=None, go_backwards=False,
                   zero_output_for_mask=False, activation="tanh",
                   recurrent_activation="sigmoid") -> tuple[Tensor, Tensor, Tensor]:
    """Same arguments and results as ``minidl.functional.recurrent.lstm``."""
    act, recurrent = _activation(activation), _activation(recurrent_activation)

    def step(x_t, h, c):
        h, c = lstm_cell(x_t, h, c, kernel, recurrent_kernel, bias, act, recurrent)
        return h, [h, c]
    outputs, (h, c) = _unroll(step, x, [as_tensor(h0), as_tensor(c0)], _mask(mask), go_backwards,
                              zero_output_for_mask)
    return outputs, h, c


def gru_reference(x, h0, kernel, recurrent_kernel, bias=None, *, mask=None, go_backwards=False,
                  zero_output_for_mask=False, activation="tanh",
                  recurrent_activation="sigmoid") -> tuple[Tensor, Tensor]:
    """Same arguments and results as ``minidl.functional.recurrent.gru``."""
    act, recurrent = _activation(activation), _activation(recurrent_activation)

    def step(x_t, h):
        h = gru_cell(x_t, h, kernel, recurrent_kernel, bias, act, recurrent)
        return h, [h]
    outputs, (h,) = _unroll(step, x, [as_tensor(h0)], _mask(mask), go_backwards, zero_output_for_mask)
    return outputs, h
