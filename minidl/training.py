"""What Sequential's training loop checks and shows around its steps, so the loop reads alone.

* The arguments fit / evaluate / predict share are checked once, each error naming the
  argument, the expectation and the value (a batch_size of 0 used to mean 32, -1 gave no batches).
* ``non_finite_problem`` is the guard of a training step: after backward and before the update
  it finds a loss or a gradient that is NaN or inf, so that fit can refuse that step and stop
  with the weights as they were (Keras' TerminateOnNaN looks only after the update).
* ``verbose``: 0 is silent, 1 a tqdm bar per epoch, 2 one line per epoch, both on stderr; "auto"
  is 1 on a terminal and 2 otherwise (a log file gets a line an epoch, not carriage returns).
"""
from __future__ import annotations

import math
import sys

import numpy as np
from tqdm.auto import tqdm

from minidl import backend


# --- arguments ----------------------------------------------------------------------------------
def positive_int(value, name: str, where: str) -> int:
    """``value`` as an int > 0; ValueError naming ``where`` ("fit") and ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{where}: {name} must be a positive int, got {value!r}")
    return int(value)


def non_negative_int(value, name: str, where: str) -> int:
    """``value`` as an int >= 0 (fit's initial_epoch); ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{where}: {name} must be an int >= 0, got {value!r}")
    return int(value)


def check_batch_size(batch_size, where: str) -> int:
    """32 when omitted, as Keras; otherwise a positive int (0 used to mean 32, -1 gave no batches)."""
    return 32 if batch_size is None else positive_int(batch_size, "batch_size", where)


def resolve_verbose(verbose, where: str) -> int:
    """0, 1 or 2; "auto" is 1 (a progress bar) when stderr is a terminal, else 2 (a line an epoch)."""
    if isinstance(verbose, str) and verbose == "auto":
        try:
            return 1 if sys.stderr.isatty() else 2
        except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
            return 2
    if isinstance(verbose, (bool, int, np.integer)) and verbose in (0, 1, 2):
        return int(verbose)
    raise ValueError(f"{where}: verbose must be 'auto', 0, 1 or 2, got {verbose!r}")


# --- the finite-step guard ----------------------------------------------------------------------
def non_finite_problem(loss: float, weights: list) -> str | None:
    """What is not finite after backward: the loss, or the gradient of which weight; None if all is.

    Args:
        loss: the step's loss value.
        weights: the trainable weights, whose ``.grad`` (None for a weight the loss does not
            reach) is looked at.
    Returns:
        A phrase for the error message ("the loss became nan", "the gradient of dense/kernel
        ... became NaN or inf"), or None.
    """
    if not math.isfinite(loss):
        return f"the loss became {loss}"
    weights = [w for w in weights if w.grad is not None]
    if not weights:
        return None
    grads = [getattr(w.grad, "data", w.grad) for w in weights]
    xp = backend.get_array_module(grads[0])
    finite = backend.to_numpy(xp.stack([xp.isfinite(g).all() for g in grads]))  # one device sync
    bad = [w.name for w, ok in zip(weights, finite) if not ok]
    if not bad:
        return None
    more = f" (and {len(bad) - 1} more weights)" if len(bad) > 1 else ""
    return f"the gradient of {bad[0]}{more} became NaN or inf, with a finite loss of {loss:.6g}"


# --- what is shown and returned -----------------------------------------------------------------
class NoBar:
    """A progress bar that shows nothing, for verbose 0 and 2."""

    def update(self, n=1): pass
    def set_postfix(self, *args, **kwargs): pass
    def close(self): pass


def progress(steps: int | None, epoch: int | None, epochs: int | None, verbose: int, label: str | None = None):
    """A tqdm bar over ``steps`` batches on stderr when ``verbose`` is 1, else a NoBar.

    Args:
        steps: batches in the epoch (None when unknown: a generator).
        epoch, epochs: the 0-based epoch and the epoch count, for the "Epoch 3/10" label.
        label: the label instead, e.g. "evaluate".
    """
    if verbose != 1:
        return NoBar()
    desc = label or f"Epoch {epoch + 1}/{epochs}"
    return tqdm(total=steps, desc=desc, unit="batch", leave=True, dynamic_ncols=True, file=sys.stderr)


def write_epoch_line(epoch: int, epochs: int, logs: dict, verbose: int) -> None:
    """With ``verbose`` 2, one line for the finished epoch on stderr: "Epoch 1/2 - loss: 0.6931 - ..."."""
    if verbose == 2:
        line = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
        sys.stderr.write(f"Epoch {epoch + 1}/{epochs} - {line}\n")


def unpack(logs: dict):
    """Keras' return form: the loss alone when there are no metrics, else ``[loss, *metrics]``."""
    values = list(logs.values())
    return values[0] if len(values) == 1 else values
