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


def get_state() -> dict:
    """The generator's state, JSON-able (its 128-bit numbers as decimal strings), so that a saved
    model can resume with the same shuffles and dropout masks (``minidl.saving``)."""
    state = _generator.bit_generator.state
    return {"bit_generator": state["bit_generator"], "state": str(state["state"]["state"]),
            "inc": str(state["state"]["inc"]), "has_uint32": int(state["has_uint32"]),
            "uinteger": str(state["uinteger"])}


def set_state(state: dict) -> None:
    """Put the generator where ``get_state`` found it.

    Raises:
        ValueError: ``state`` is not what get_state gives (a PCG64 state, numbers as decimal
            strings below 2**128), naming the part that is not.
    """
    if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
        raise ValueError(f"random state: expected a PCG64 state from minidl.random.get_state(), got "
                         f"{str(state)[:80]}")
    numbers = {}
    for key in ("state", "inc", "uinteger"):
        text = state.get(key)
        if not isinstance(text, str) or not text.isdigit() or len(text) > 39 or int(text) >= 2 ** 128:
            raise ValueError(f"random state: {key!r} must be a decimal string below 2**128, got {str(text)[:50]}")
        numbers[key] = int(text)
    if state.get("has_uint32") not in (0, 1) or isinstance(state.get("has_uint32"), bool):
        raise ValueError(f"random state: 'has_uint32' must be 0 or 1, got {str(state.get('has_uint32'))[:20]}")
    generator = np.random.Generator(np.random.PCG64())
    generator.bit_generator.state = {"bit_generator": "PCG64",
                                     "state": {"state": numbers["state"], "inc": numbers["inc"]},
                                     "has_uint32": state["has_uint32"], "uinteger": numbers["uinteger"]}
    global _generator
    _generator = generator
