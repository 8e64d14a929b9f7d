"""Tensor: an array plus what reverse-mode differentiation needs (grad, requires_grad, creator).

``backward()`` walks the graph iteratively in reverse topological order — no recursion, so a
recurrent layer unrolled over thousands of steps cannot reach Python's recursion limit — and
adds up the gradients of tensors used more than once. Only leaves (tensors no Function made,
such as weights) keep ``.grad``; intermediate gradients are dropped as soon as they are used.
Operators call ``minidl.functional``, which is handed to this file (``use_functional``) rather
than imported by it, so that the ops above may import Tensor without an import cycle.
"""
from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from minidl import backend, workspace
from minidl.backend import Array, get_array_module

# The ops live in minidl.functional, which sits above this file: its ops make Tensors, so
# importing it here would make an import cycle. minidl/__init__.py hands the module over with
# use_functional() as soon as both are loaded, before any Tensor operator can run.
F: Any = None
_tracer: Any = None   # a minidl.trace.Trace while one records, else None (see set_tracer)


def use_functional(module: Any) -> None:
    """Give Tensor's operators and methods the module of ops they call (minidl.functional)."""
    global F
    F = module


def set_tracer(tracer: Any) -> None:
    """Route each Function's backward through ``tracer.backward(function, grads)`` (None: stop).
    Used by minidl.trace; function.set_tracer does the same for forward."""
    global _tracer
    _tracer = tracer


def _to_array(data: Any, dtype: Any = None) -> Array:
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.generic):  # NumPy reductions return scalars; keep their dtype
        data = np.asarray(data)
    if backend.is_cupy_array(data) or isinstance(data, np.ndarray):
        return data if dtype is None else data.astype(dtype, copy=False)
    xp = backend.xp_default()
    array = xp.asarray(data, dtype=dtype)
    if dtype is None and array.dtype.kind == "f" and array.dtype != backend.floatx():
        array = array.astype(backend.floatx())  # Python floats default to floatx, not float64
    return array


class Tensor:
    """An array (NumPy or CuPy) that can carry a gradient.

    Args:
        data: array, list or number. Arrays keep their module and dtype; lists and numbers are
            created with the active backend, floats as ``dl.backend.floatx()`` (float32).
        requires_grad: whether backward() should compute a gradient for this tensor.
        dtype: optional dtype to convert to.
    Attributes:
        data: the array. grad: an array like data, or None. creator: the Function that made
        this tensor, or None for a leaf. mask: an optional bool (batch, steps) array that
        layers pass along (Keras' ``_keras_mask``).
    """

    __array_priority__ = 1000  # make ndarray * Tensor call Tensor.__rmul__

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None,
                 name: str | None = None):
        self.data = _to_array(data, dtype)
        self.grad: Array | None = None
        self.requires_grad = bool(requires_grad)
        self.creator = None
        self.name = name
        self.mask = None

    # --- array-like properties -------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return int(self.data.size)

    @property
    def device(self) -> str:
        return "gpu" if backend.is_cupy_array(self.data) else "cpu"

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({backend.to_numpy(self.data)!r}{grad})"

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (copied from the GPU if need be)."""
        return backend.to_numpy(self.data)

    def item(self) -> float:
        return self.data.item()

    def to(self, device: str) -> "Tensor":
        """A tensor on "cpu" or "gpu"; a leaf keeps requires_grad. Returns self if already there."""
        moved = backend.to_device(self.data, device)
        if moved is self.data:
            return self
        return Tensor(moved, requires_grad=self.requires_grad, name=self.name)

    def detach(self) -> "Tensor":
        """The same data, cut from the graph."""
        return Tensor(self.data, name=self.name)

    def astype(self, dtype: Any) -> "Tensor":
        return F.cast(self, dtype)

    # --- reverse mode ------------------------------------------------------------------------
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Compute the gradient of this tensor with respect to every leaf that requires one.

        Args:
            grad: ∂L/∂self, shaped like self; ones when omitted (so a scalar loss needs none).
            retain_graph: keep the graph so backward can run through it again.
        Raises:
            RuntimeError: the graph was already freed by an earlier backward.
        """
        xp = get_array_module(self.data)
        grad = xp.ones_like(self.data) if grad is None else _to_array(grad, self.data.dtype)
        if tuple(grad.shape) != self.shape:
            raise ValueError(f"Tensor.backward: grad has shape {tuple(grad.shape)}, "
                             f"the tensor has shape {self.shape}")
        if self.creator is None:
            self.grad = grad if self.grad is None else self.grad + grad
            return
        with workspace.keeping() if retain_graph else contextlib.nullcontext():
            self._backward_through(grad, retain_graph)

    def _backward_through(self, grad, retain_graph: bool) -> None:
        """backward's walk: every Function behind self, last first, given its outputs' gradients."""
        order = _topological_order(self.creator)
        # id -> (tensor, gradient): holding the tensor keeps it alive (and its id unique) until
        # the Function that made it has used its gradient, even after consumers freed the graph.
        grads = {id(self): (self, grad)}
        for function in reversed(order):
            if getattr(function, "released", False):
                raise RuntimeError("backward through a graph that an earlier backward freed; "
                                   "pass retain_graph=True to the first backward")
            gys = []
            for ref in function.outputs:
                y = ref()
                gys.append(None if y is None else grads.pop(id(y), (None, None))[1])
            if all(g is None for g in gys):
                continue
            gxs = function.backward(*gys) if _tracer is None else _tracer.backward(function, gys)
            if not isinstance(gxs, tuple):
                gxs = (gxs,)
            for x, gx, needed in zip(function.inputs, gxs, function.needs_input_grad):
                if gx is None or not needed:
                    continue
                if x.creator is None:
                    x.grad = gx if x.grad is None else x.grad + gx
                else:
                    key = id(x)
                    grads[key] = (x, gx if key not in grads else grads[key][1] + gx)
            if not retain_graph:
                function.release()

    # --- operators (all go through minidl.functional) ------------------------------------------
    def __add__(self, other): return F.add(self, other)
    def __radd__(self, other): return F.add(other, self)
    def __sub__(self, other): return F.sub(self, other)
    def __rsub__(self, other): return F.sub(other, self)
    def __mul__(self, other): return F.mul(self, other)
    def __rmul__(self, other): return F.mul(other, self)
    def __truediv__(self, other): return F.div(self, other)
    def __rtruediv__(self, other): return F.div(other, self)
    def __neg__(self): return F.neg(self)
    def __pow__(self, exponent): return F.pow(self, exponent)
    def __matmul__(self, other): return F.matmul(self, other)
    def __rmatmul__(self, other): return F.matmul(other, self)
    def __getitem__(self, index): return F.getitem(self, index)

    # comparisons give plain bool arrays: they have no gradient
    def __lt__(self, other): return self.data < _to_array(other)
    def __le__(self, other): return self.data <= _to_array(other)
    def __gt__(self, other): return self.data > _to_array(other)
    def __ge__(self, other): return self.data >= _to_array(other)

    __hash__ = object.__hash__

    # --- methods for the common ops --------------------------------------------------------------
    def sum(self, axis=None, keepdims=False): return F.sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return F.mean(self, axis, keepdims)
    def max(self, axis=None, keepdims=False): return F.max(self, axis, keepdims)
    def reshape(self, *shape):
        return F.reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)
    def transpose(self, *axes):
        return F.transpose(self, axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else (axes or None))
    @property
    def T(self): return F.transpose(self)
    def flatten(self): return F.reshape(self, (-1,))
    def exp(self): return F.exp(self)
    def log(self): return F.log(self)
    def sqrt(self): return F.sqrt(self)
    def abs(self): return F.abs(self)
    def tanh(self): return F.tanh(self)
    def sigmoid(self): return F.sigmoid(self)
    def relu(self): return F.relu(self)
    def softmax(self, axis=-1): return F.softmax(self, axis)
    def log_softmax(self, axis=-1): return F.log_softmax(self, axis)
    def clip(self, low, high): return F.clip(self, low, high)


def as_tensor(x: Any) -> Tensor:
    """x itself if it is a Tensor, else a constant Tensor around it."""
    return x if isinstance(x, Tensor) else Tensor(x)


def _topological_order(root) -> list:
    """Functions reachable from ``root``, each after every Function that made its inputs.

    An iterative depth-first search with an explicit stack (no recursion).
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        function, done = stack.pop()
        if done:
            order.append(function)
            continue
        if id(function) in visited:
            continue
        visited.add(id(function))
        stack.append((function, True))
        for x in function.inputs:
            if x.creator is not None and id(x.creator) not in visited:
                stack.append((x.creator, False))
    return order
