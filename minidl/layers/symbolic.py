"""Symbolic tensors: what ``layers.Input(shape)`` returns and what a layer called on one gives.

A ``SymbolicTensor`` holds no data, only a shape (batch axis None), a dtype and the ``Node``
that made it. Calling a layer on symbolic tensors records a Node (the layer, its inputs, its
outputs, the call's keyword arguments); ``minidl.model_graph`` walks these Nodes back from a
model's outputs to its inputs:

    x = Input((20,))              SymbolicTensor (None, 20)     node: InputLayer
    h = Dense(16)(x)              SymbolicTensor (None, 16)     node: Dense, inputs [x]
    y = Concatenate()([h, x])     SymbolicTensor (None, 36)     node: Concatenate, inputs [h, x]

The output shapes come from a trial forward on zeros (batch 1), the way
``Layer.compute_output_shape`` finds them, rather than from a shape rule per layer: every layer
already runs forward, so its shape can never disagree with what it computes, and the trial
builds its weights, as Keras' symbolic call does. A non-batch axis given as None (a variable
number of frames) is tried at two lengths; an output axis that changes between the two stays None.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator

from minidl import backend
from minidl.function import no_grad
from minidl.layers.serialization import current_size_budget
from minidl.tensor import Tensor

# Lengths a None (variable) axis is tried at: long enough for the usual kernels and pools,
# and two of them, so that an output axis which follows the input's length is seen to move.
TRIAL_LENGTHS = (16, 32)
_IN_SHAPE_TRIAL = contextvars.ContextVar("minidl_shape_trial", default=False)


@contextlib.contextmanager
def shape_trial() -> Iterator[None]:
    """Mark the forwards inside as trials on zeros, run only to learn shapes and build weights."""
    token = _IN_SHAPE_TRIAL.set(True)
    try:
        yield
    finally:
        _IN_SHAPE_TRIAL.reset(token)


def in_shape_trial() -> bool:
    """Whether the current forward is such a trial: a stateful layer neither keeps its states
    from it (a batch of 1 would stick) nor feeds it the states it carries."""
    return _IN_SHAPE_TRIAL.get()


class SymbolicTensor:
    """A placeholder for a batch: shape and dtype only, and the Node that produces it.

    Attributes:
        shape: (None, ...) — None for the batch axis and any axis of variable length.
        dtype: the dtype of the values it stands for ("float32", ...).
        node: the Node whose ``outputs[index]`` this is.
        index: its position among that Node's outputs.
    """

    def __init__(self, shape: tuple, dtype: str, node: "Node | None" = None, index: int = 0,
                 name: str | None = None):
        self.shape = tuple(shape)
        self.dtype = str(dtype)
        self.node = node
        self.index = index
        self.name = name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        made_by = f", made by {self.node.layer.name!r}" if self.node is not None else ""
        return f"<SymbolicTensor shape={self.shape} dtype={self.dtype}{made_by}>"

    def _unsupported(self, *args, **kwargs):
        raise TypeError("arithmetic on symbolic tensors (layers.Input outputs) is not supported in minidl; "
                        "use the merge layers (layers.Add, layers.Subtract, layers.Multiply, ...) or a layer")

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _unsupported
    __truediv__ = __rtruediv__ = __matmul__ = __rmatmul__ = __neg__ = __pow__ = __getitem__ = _unsupported
    __hash__ = object.__hash__

    def __array__(self, *args, **kwargs):
        # reached when an op of minidl.functional (F.relu(x), ...) is given a symbolic tensor
        raise TypeError(f"{self!r} holds no values: ops of minidl.functional on symbolic tensors are not "
                        f"supported; wrap the computation in a layer (layers.Activation, a merge layer, ...)")

    def numpy(self):
        raise TypeError(f"{self!r} holds no values: it is a symbolic tensor; build a Model from it and "
                        f"call model.predict(x) for values")


class Node:
    """One call of a layer inside a graph: which tensors went in, which came out.

    Attributes:
        layer: the layer called.
        inputs: the symbolic tensors given, in call order (a flat list).
        as_list: whether the layer was given a list (merge layers) rather than one tensor.
        outputs: the symbolic tensors it returned, in order.
        returns_list: whether the layer returned a list (e.g. an RNN with return_state).
        kwargs: other keyword arguments of the call (e.g. ``training=True``), replayed each run.
    """

    def __init__(self, layer, inputs: list, as_list: bool, kwargs: dict):
        self.layer = layer
        self.inputs = inputs
        self.as_list = as_list
        self.kwargs = kwargs
        self.outputs: list[SymbolicTensor] = []
        self.returns_list = False

    @property
    def parents(self) -> list["Node"]:
        """The Nodes that made this Node's inputs, in input order."""
        return [x.node for x in self.inputs if x.node is not None]

    def call_structure(self, values: list):
        """``values`` (one per input) in the form the layer was called with: alone or a list."""
        return list(values) if self.as_list else values[0]


def is_symbolic(value: Any) -> bool:
    """Whether ``value`` is a SymbolicTensor, or a list / tuple holding one."""
    if isinstance(value, SymbolicTensor):
        return True
    return isinstance(value, (list, tuple)) and any(isinstance(v, SymbolicTensor) for v in value)


def layer_nodes(layer) -> list[Node]:
    """The Nodes recorded for ``layer``, one per symbolic call, in call order."""
    return layer.__dict__.setdefault("inbound_nodes", [])


def call_symbolic(layer, inputs, training: bool | None, kwargs: dict):
    """Record ``layer(inputs, **kwargs)`` on symbolic tensors and return symbolic outputs.

    Builds the layer (a trial forward on zeros) if it is not built. ``training`` given here is
    fixed for this call in every run of the graph (Keras' ``layer(x, training=True)``); None
    lets the model's own training flag through.

    Raises:
        TypeError: a list mixing symbolic tensors with arrays, or a symbolic tensor passed as a
            keyword argument (``initial_state=``), neither of which minidl supports in a graph.
    """
    as_list = isinstance(inputs, (list, tuple))
    flat = list(inputs) if as_list else [inputs]
    name = f"{type(layer).__name__} '{layer.name}'"
    if not all(isinstance(x, SymbolicTensor) for x in flat):
        raise TypeError(f"{name}: calling a layer on a list that mixes symbolic tensors (layers.Input "
                        f"outputs) with arrays is not supported; make every input a layers.Input")
    for key, value in kwargs.items():
        if is_symbolic(value):
            raise TypeError(f"{name}: a symbolic tensor as the keyword argument {key}= is not supported in "
                            f"a minidl graph; pass it as an input of a layer instead")
    if training is not None:
        kwargs = {**kwargs, "training": bool(training)}
    shapes = trial_shapes(layer, flat, as_list, kwargs)
    node = Node(layer, flat, as_list, kwargs)
    outputs, returns_list = shapes
    node.returns_list = returns_list
    node.outputs = [SymbolicTensor(shape, dtype, node, i) for i, (shape, dtype) in enumerate(outputs)]
    layer_nodes(layer).append(node)
    return list(node.outputs) if returns_list else node.outputs[0]


def trial_shapes(layer, flat: list, as_list: bool, kwargs: dict) -> tuple[list[tuple], bool]:
    """The (shape, dtype) of each output of ``layer`` on inputs like ``flat``, by trial forwards.

    Within ``minidl.saving.load_model`` the file's size budget is asked first (and after), as
    Sequential's build always did, so that a file cannot make a trial allocate without bound.
    """
    budget = current_size_budget()
    if budget is not None:
        budget.before(layer, flat[0].shape)
    variable = any(n is None for x in flat for n in x.shape[1:])
    first = _trial(layer, flat, as_list, kwargs, TRIAL_LENGTHS[0])
    second = _trial(layer, flat, as_list, kwargs, TRIAL_LENGTHS[1]) if variable else first
    outputs = []
    for (a, dtype), (b, _) in zip(first[0], second[0]):
        outputs.append(((None,) + tuple(n if n == m else None for n, m in zip(a[1:], b[1:])), dtype))
    if budget is not None:
        for shape, _ in outputs:
            budget.after(layer, shape)
    return outputs, first[1]


def _trial(layer, flat: list, as_list: bool, kwargs: dict, length: int) -> tuple[list, bool]:
    xp = backend.xp_default()
    values = [Tensor(xp.zeros((1,) + tuple(length if n is None else n for n in x.shape[1:]), dtype=x.dtype))
              for x in flat]
    with no_grad(), shape_trial():
        out = layer(values if as_list else values[0], **kwargs)
    returns_list = isinstance(out, (list, tuple))
    outs = list(out) if returns_list else [out]
    return [(tuple(o.shape), str(o.dtype)) for o in outs], returns_list
