"""Central-difference gradient check, with torch.autograd.gradcheck's signature and meaning.

For each input, every element x_k is nudged by ±eps and the change of a scalar projection of
the output, L = Σ v ⊙ fn(inputs) with a fixed random v, is compared with the analytic gradient
that backward() gives for the same v:

    numeric_k = (L(x_k + eps) - L(x_k - eps)) / (2·eps)
    pass when |analytic_k - numeric_k| ≤ atol + rtol·|numeric_k| for every k

Projecting with v checks the whole vector-Jacobian product that backward computes, one forward
pair per element instead of one per element per output. The defaults assume float64: in float32
the rounding error of the differences alone is larger than atol. Inputs must not share memory
(nudging one would nudge the other).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from minidl.backend import get_array_module, to_numpy
from minidl.function import no_grad
from minidl.tensor import Tensor


class GradcheckError(AssertionError):
    """An analytic gradient differs from the numeric one; the message names where."""


def gradcheck(fn: Callable[..., Tensor], inputs: Sequence, *, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, seed: int = 0) -> bool:
    """Check ``fn``'s gradients with respect to its floating-point inputs.

    Args:
        fn: takes one Tensor per input and returns a Tensor (any shape).
        inputs: float64 arrays or Tensors; integer arrays pass through as constants.
        eps, atol, rtol: as torch.autograd.gradcheck.
        seed: seed of the projection vector v.
    Returns:
        True when every gradient matches.
    Raises:
        GradcheckError: naming the input, the index of the worst element, analytic and numeric.
        TypeError: an input is floating point but not float64.
    """
    arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
    checked = [getattr(a, "dtype", None) is not None and a.dtype.kind == "f" for a in arrays]
    for position, (array, is_float) in enumerate(zip(arrays, checked)):
        if is_float and array.dtype != np.float64:
            raise TypeError(f"gradcheck: input {position} is {array.dtype}; finite differences need "
                            "float64 inputs")
    arrays = [a.copy() if is_float else a for a, is_float in zip(arrays, checked)]

    def evaluate(*values) -> Tensor:
        return fn(*(Tensor(v, requires_grad=c) if c else v for v, c in zip(values, checked)))

    tensors = [Tensor(a, requires_grad=True) if c else a for a, c in zip(arrays, checked)]
    out = fn(*tensors)
    xp = get_array_module(out.data)
    v = xp.asarray(np.random.default_rng(seed).normal(size=out.shape)).astype(out.dtype)
    out.backward(v)

    for position, (array, is_float) in enumerate(zip(arrays, checked)):
        if not is_float:
            continue
        analytic = tensors[position].grad
        analytic = np.zeros(array.shape) if analytic is None else to_numpy(analytic)
        numeric = np.zeros(array.shape)
        flat = array.reshape(-1)  # a view: nudging flat nudges array
        with no_grad():
            for k in range(flat.size):
                original = flat[k].item()
                flat[k] = original + eps
                plus = float((evaluate(*arrays).data * v).sum())
                flat[k] = original - eps
                minus = float((evaluate(*arrays).data * v).sum())
                flat[k] = original
                numeric.reshape(-1)[k] = (plus - minus) / (2 * eps)
        if analytic.shape != array.shape:
            raise GradcheckError(f"gradcheck: input {position}: gradient has shape {analytic.shape}, "
                                 f"the input has shape {array.shape}")
        excess = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        if excess.size and excess.max() > 0:
            worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(excess)), array.shape))
            raise GradcheckError(f"gradcheck: input {position} of shape {array.shape}, element {worst}: "
                                 f"analytic {analytic[worst]:.8g}, numeric {numeric[worst]:.8g} "
                                 f"(atol {atol}, rtol {rtol})")
    return True
