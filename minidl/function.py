"""Function: the one way to add a differentiable op.

A Function's ``forward(*arrays)`` takes and returns raw arrays and keeps on ``self`` what its
``backward(*grads)`` needs; ``backward`` returns one gradient per input (None where there is
none). ``apply(*inputs)`` runs forward and, when gradients are wanted, records the op in the
graph — Chainer's FunctionNode and PyTorch's autograd.Function in their smallest form:

    x ──┐
        ├─► Function.forward ──► y        y.creator = the Function
    W ──┘                                 Function.inputs = (x, W)

Each call makes a new instance, so what one call saved is never seen by another.
"""
from __future__ import annotations

import contextlib
import weakref
from typing import Any, Iterator

from minidl.backend import Array
from minidl.tensor import Tensor, as_tensor

_grad_enabled = [True]
_tracer = None   # a minidl.trace.Trace while one records, else None: the only cost when none does


def set_tracer(tracer: Any) -> None:
    """Route every Function's forward through ``tracer.forward(function, tensors)`` (None: stop).
    Used by minidl.trace; tensor.set_tracer does the same for backward."""
    global _tracer
    _tracer = tracer


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Inside this block ops build no graph (inference, evaluation, optimizer steps)."""
    previous = _grad_enabled[0]
    _grad_enabled[0] = False
    try:
        yield
    finally:
        _grad_enabled[0] = previous


def is_grad_enabled() -> bool:
    return _grad_enabled[0]


class Function:
    """Base class of every op. Subclasses define ``forward`` and ``backward``.

    Attributes set by ``apply`` when a graph is built:
        inputs: the input Tensors (kept alive until backward frees the graph).
        outputs: weak references to the output Tensors.
        needs_input_grad: one bool per input; backward may return None where it is False.
    """

    inputs: tuple = ()
    needs_input_grad: tuple = ()

    def forward(self, *xs: Array) -> Array | tuple[Array, ...]:
        raise NotImplementedError

    def backward(self, *gys: Array | None) -> Array | None | tuple[Array | None, ...]:
        raise NotImplementedError

    def apply(self, *inputs):
        """Run the op on Tensors (or arrays, which count as constants); return Tensor(s)."""
        tensors = tuple(as_tensor(x) for x in inputs)
        self.needs_input_grad = tuple(t.requires_grad for t in tensors)
        record = _grad_enabled[0] and any(self.needs_input_grad)
        if _tracer is None:
            ys = self.forward(*(t.data for t in tensors))
        else:  # inside `with dl.trace()`: it runs forward, timing it and noting the shapes
            ys = _tracer.forward(self, tensors)
        single = not isinstance(ys, tuple)
        outputs = tuple(Tensor(y, requires_grad=record) for y in ((ys,) if single else ys))
        if record:
            self.inputs = tensors
            self.outputs = tuple(weakref.ref(y) for y in outputs)
            for y in outputs:
                y.creator = self
        return outputs[0] if single else outputs

    def will_backward(self) -> bool:
        """Called inside forward: whether apply() records this call, so that backward will come.
        When it will not, forward may give its scratch buffers back (minidl.workspace) at once."""
        return _grad_enabled[0] and any(self.needs_input_grad)

    def release(self) -> None:
        """Drop everything forward saved, so the graph's memory is freed after backward."""
        self.__dict__.clear()
        self.released = True

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"
