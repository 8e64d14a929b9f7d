"""Weight penalties added to the training loss, with Keras' names and defaults.

    L1(l1):   l1 · Σ|w|
    L2(l2):   l2 · Σ w²          (no factor 1/2, as Keras)
    L1L2:     both
"""
from __future__ import annotations

import minidl.functional as F
from minidl.tensor import Tensor


class Regularizer:
    def __call__(self, weight: Tensor) -> Tensor:
        raise NotImplementedError

    def get_config(self) -> dict:
        return dict(vars(self))


class L1L2(Regularizer):
    """l1 · Σ|w| + l2 · Σ w²."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0):
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, weight: Tensor) -> Tensor:
        penalty = None
        if self.l1:
            penalty = F.mul(self.l1, F.sum(F.abs(weight)))
        if self.l2:
            squares = F.mul(self.l2, F.sum(F.mul(weight, weight)))
            penalty = squares if penalty is None else F.add(penalty, squares)
        return penalty if penalty is not None else F.mul(0.0, F.sum(weight))


class L1(L1L2):
    """l1 · Σ|w| (Keras' default l1 = 0.01)."""

    def __init__(self, l1: float = 0.01):
        super().__init__(l1=l1)

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(L1L2):
    """l2 · Σ w² (Keras' default l2 = 0.01)."""

    def __init__(self, l2: float = 0.01):
        super().__init__(l2=l2)

    def get_config(self) -> dict:
        return {"l2": self.l2}


REGULARIZERS = {"l1": L1, "l2": L2, "l1_l2": L1L2, "L1": L1, "L2": L2, "L1L2": L1L2}


def get(identifier) -> Regularizer | None:
    """A regularizer from None, a Keras name ("l1", "l2", "l1_l2"), a dict config or an object."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        if name not in REGULARIZERS:
            raise ValueError(f"unknown regularizer class {name!r} in {identifier!r}; known: "
                             f"{', '.join(sorted(REGULARIZERS))}")
        return REGULARIZERS[name](**identifier.get("config", {}))
    if isinstance(identifier, str) and identifier in REGULARIZERS:
        return REGULARIZERS[identifier]()
    raise ValueError(f"unknown regularizer {identifier!r}; known: l1, l2, l1_l2, or a Regularizer")


def serialize(regularizer: Regularizer | None):
    """A JSON-able form ({"class_name", "config"}) or None."""
    if regularizer is None:
        return None
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}
