"""Merge layers: several tensors in, one out — the joints of a functional graph, as Keras'.

    Add        y = x₁ + x₂ + ... + xₙ               Subtract   y = x₁ - x₂  (exactly two)
    Multiply   y = x₁ ⊙ x₂ ⊙ ... ⊙ xₙ               Average    y = (x₁ + ... + xₙ) / n
    Maximum    y = max(x₁, ..., xₙ) elementwise     Minimum    y = min(x₁, ..., xₙ)
    Concatenate  y = [x₁, ..., xₙ] along ``axis``
    Dot        y_b = Σ_k x₁[b, ..., k] · x₂[b, k, ...]  per sample b (Keras' batch_dot)

Each is built from ops that carry their own gradients (``minidl.functional``): the elementwise
ones broadcast as NumPy does, Maximum and Minimum pass the gradient to the input that won
(``F.where``; on an exact tie, to the earlier input). Masks: Add ... Minimum give the OR of the
inputs' masks (None if one input has none), Concatenate joins them along its axis, Dot drops
them — Keras' rules.
"""
from __future__ import annotations

from functools import reduce

import minidl.functional as F
from minidl.backend import get_array_module
from minidl.layers.base import Layer
from minidl.layers.symbolic import call_symbolic, is_symbolic
from minidl.tensor import Tensor


class _Merge(Layer):
    """Shared base: called on a list of tensors; ``merge(tensors)`` computes the output.

    Subclasses set ``exactly`` when they take a fixed number of inputs (Subtract and Dot: 2).
    """

    exactly: int | None = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def __call__(self, inputs, training: bool | None = None, mask=None, **kwargs):
        if is_symbolic(inputs):
            return call_symbolic(self, inputs, training, kwargs)
        name = f"{type(self).__name__} '{self.name}'"
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2 or (self.exactly and len(inputs) != self.exactly):
            wanted = f"exactly {self.exactly}" if self.exactly else "at least 2"
            got = f"a list of {len(inputs)}" if isinstance(inputs, (list, tuple)) else type(inputs).__name__
            raise ValueError(f"{name} must be called on a list of {wanted} inputs, got {got}")
        tensors = [self._prepare(x) for x in inputs]
        masks = list(mask) if mask is not None else [getattr(x, "mask", None) for x in inputs]
        if not self.built:
            self.build([t.shape for t in tensors])
            self.built = True
        self.check_shapes([t.shape for t in tensors])
        output = self.merge(tensors)
        output.mask = self.merge_mask(tensors, masks)
        return output

    def check_shapes(self, shapes: list[tuple]) -> None:
        """Elementwise merges need shapes that broadcast, batch axis included (as Keras)."""
        rank = max(len(s) for s in shapes)
        padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
        for axis in range(rank):
            sizes = {s[axis] for s in padded} - {1}
            if len(sizes) > 1:
                raise ValueError(f"{type(self).__name__} '{self.name}': inputs have incompatible shapes "
                                 f"{[tuple(s) for s in shapes]}")

    def merge(self, tensors: list[Tensor]) -> Tensor:
        raise NotImplementedError

    def merge_mask(self, tensors: list[Tensor], masks: list):
        """The OR of the masks, or None unless every input has one (Keras' merge rule)."""
        if any(m is None for m in masks):
            return None
        xp = get_array_module(masks[0])
        return reduce(xp.logical_or, masks)


class Add(_Merge):
    """y = Σ xᵢ, elementwise (inputs of one shape, or shapes that broadcast)."""

    def merge(self, tensors):
        return reduce(F.add, tensors)


class Subtract(_Merge):
    """y = x₁ - x₂, elementwise; exactly two inputs."""

    exactly = 2

    def merge(self, tensors):
        return F.sub(tensors[0], tensors[1])


class Multiply(_Merge):
    """y = x₁ ⊙ x₂ ⊙ ..., elementwise."""

    def merge(self, tensors):
        return reduce(F.mul, tensors)


class Average(_Merge):
    """y = (x₁ + ... + xₙ) / n, elementwise."""

    def merge(self, tensors):
        return F.mul(reduce(F.add, tensors), 1.0 / len(tensors))


class Maximum(_Merge):
    """y = max(x₁, ..., xₙ) elementwise; the gradient goes to the largest input."""

    def merge(self, tensors):
        return reduce(lambda a, b: F.where(a.data >= b.data, a, b), tensors)


class Minimum(_Merge):
    """y = min(x₁, ..., xₙ) elementwise; the gradient goes to the smallest input."""

    def merge(self, tensors):
        return reduce(lambda a, b: F.where(a.data <= b.data, a, b), tensors)


class Concatenate(_Merge):
    """y = [x₁, ..., xₙ] joined along ``axis``; the other axes must agree.

    Args:
        axis: the axis to join along (default -1, the features).
    """

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise ValueError(f"Concatenate: axis must be an int, got {axis!r}")
        self.axis = axis

    def check_shapes(self, shapes):
        rank = len(shapes[0])
        axis = self.axis % rank if -rank <= self.axis < rank else None
        if axis is None or axis == 0 or any(len(s) != rank for s in shapes) or \
                any(tuple(s[:axis] + s[axis + 1:]) != tuple(shapes[0][:axis] + shapes[0][axis + 1:]) for s in shapes):
            raise ValueError(f"Concatenate '{self.name}' (axis={self.axis}) needs inputs of one rank whose shapes "
                             f"agree but on a non-batch axis {self.axis}, got {[tuple(s) for s in shapes]}")

    def merge(self, tensors):
        return F.concatenate(tensors, axis=self.axis)

    def merge_mask(self, tensors, masks):
        """Each input's mask (all True for one without), widened to its shape and joined along
        ``axis``; a position is kept if any of its features is (Keras' rule)."""
        if all(m is None for m in masks):
            return None
        xp = get_array_module(next(m for m in masks if m is not None))
        full = []
        for x, m in zip(tensors, masks):
            if m is None:
                full.append(xp.ones(x.shape, dtype=bool))
            else:
                m = m.reshape(m.shape + (1,) * (x.ndim - m.ndim))
                full.append(xp.broadcast_to(m, x.shape))
        return xp.concatenate(full, axis=self.axis).any(axis=-1)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class Dot(_Merge):
    """Per-sample dot products of two inputs along ``axes`` (Keras' batch_dot).

    For x₁ (batch, m, k) and x₂ (batch, k, n) with axes (2, 1): y (batch, m, n); a 2-D input
    (batch, k) contributes no axis, and two 2-D inputs give (batch, 1).

    Args:
        axes: one axis for both inputs, or a pair (axis of x₁, axis of x₂); not the batch axis.
        normalize: divide each input by its L2 norm along its axis first, so y is the cosine
            similarity: x / sqrt(max(Σ x², 1e-12)), as Keras.
    Input shape: two tensors of rank 2 or 3 (higher ranks are not supported).
    """

    exactly = 2

    def __init__(self, axes, normalize: bool = False, **kwargs):
        super().__init__(**kwargs)
        pair = tuple(axes) if isinstance(axes, (list, tuple)) else (axes, axes)
        if len(pair) != 2 or not all(isinstance(a, int) and not isinstance(a, bool) for a in pair):
            raise ValueError(f"Dot: axes must be an int or a pair of ints, got {axes!r}")
        self.axes = axes if isinstance(axes, int) else list(axes)
        self.pair = pair
        self.normalize = bool(normalize)
        self.supports_masking = False

    def check_shapes(self, shapes):
        ranks = [len(s) for s in shapes]
        if any(r not in (2, 3) for r in ranks):
            raise ValueError(f"Dot '{self.name}': inputs of rank 2 or 3 are supported, got shapes "
                             f"{[tuple(s) for s in shapes]} (higher ranks are not supported in minidl)")
        axes = [a % r for a, r in zip(self.pair, ranks)]
        if 0 in axes or shapes[0][axes[0]] != shapes[1][axes[1]] or shapes[0][0] != shapes[1][0]:
            raise ValueError(f"Dot '{self.name}' (axes={self.axes}): the axes must be non-batch axes of one size "
                             f"and the batches equal, got shapes {[tuple(s) for s in shapes]}")

    def merge(self, tensors):
        x, y = tensors
        ax, ay = (a % t.ndim for a, t in zip(self.pair, tensors))
        if self.normalize:
            x, y = _l2_normalize(x, ax), _l2_normalize(y, ay)
        # x as (batch, m, k) and y as (batch, k, n): one batched matmul contracts k
        left = F.reshape(x, (x.shape[0], 1, x.shape[1])) if x.ndim == 2 else \
            (x if ax == 2 else F.transpose(x, (0, 2, 1)))
        right = F.reshape(y, (y.shape[0], y.shape[1], 1)) if y.ndim == 2 else \
            (y if ay == 1 else F.transpose(y, (0, 2, 1)))
        out = F.matmul(left, right)                       # (batch, m, n)
        keep = [x.ndim == 3, y.ndim == 3]
        if keep == [True, True]:
            return out
        if keep == [True, False]:
            return F.reshape(out, out.shape[:2])
        if keep == [False, True]:
            return F.reshape(out, (out.shape[0], out.shape[2]))
        return F.reshape(out, (out.shape[0], 1))

    def merge_mask(self, tensors, masks):
        return None

    def get_config(self):
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


def _l2_normalize(x: Tensor, axis: int) -> Tensor:
    """x / sqrt(max(Σ x² along axis, 1e-12)) — Keras' l2_normalize, epsilon included."""
    squares = F.sum(F.mul(x, x), axis=axis, keepdims=True)
    return F.div(x, F.sqrt(F.clip(squares, 1e-12, float("inf"))))
