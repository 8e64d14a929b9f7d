"""minidl's own random generator: ``dl.random.seed(n)`` makes weights and training repeatable.

Every random draw in the library (initialisers, dropout masks, shuffling) comes from here,
never from ``np.random.seed``'s global state, as ``torch.manual_seed`` works for PyTorch. Draws
are made on the CPU and moved to the active device, so a seed gives the same weights on either.
"""
from __future__ import annotations

import numpy as np

_generator = np.random.default_rng(0)


def seed(value: int) -> None:
    """Restart minidl's generator from ``value``."""
    global _generator
    _generator = np.random.default_rng(value)


def generator() -> np.random.Generator:
    """The generator every random draw in minidl uses."""
    return _generator
