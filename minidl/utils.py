"""Small Keras conveniences, and ``plot_graph`` (drawn by minidl/graph.py) where Keras keeps its
``keras.utils.plot_model``."""
from __future__ import annotations

import numpy as np

from minidl.graph import plot_graph

__all__ = ["plot_graph", "to_categorical"]


def to_categorical(y, num_classes: int | None = None, dtype: str = "float32") -> np.ndarray:
    """One-hot rows for integer labels: (n,) -> (n, num_classes), as keras.utils.to_categorical."""
    y = np.asarray(y)
    if y.dtype.kind == "f":
        if not np.all(y == np.round(y)):
            raise ValueError("to_categorical: labels must be whole numbers")
        y = y.astype(int)
    if y.ndim > 1 and y.shape[-1] == 1:
        y = y[..., 0]
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        bad = int(y.min()) if y.min() < 0 else int(y.max())
        raise ValueError(f"to_categorical: label {bad} is out of range for {num_classes} classes")
    return np.eye(num_classes, dtype=dtype)[y]
