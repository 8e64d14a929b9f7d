"""Optimizers (SGD, RMSprop, Adam, AdamW, Adagrad, Adadelta, Adamax, Nadam, Lion), with Keras 3's
formulas, and ``get``/``serialize`` to make them from names and configs; the learning-rate
schedules are in ``minidl.optimizer_schedules``, reachable here as ``schedules`` (Keras'
``keras.optimizers.schedules``).

    base.py          Optimizer: the step (clipping, weight decay, the rule), slots, configs
    update_rules.py  the nine rules, each a subclass with its formula in the docstring
"""
from __future__ import annotations

from minidl import optimizer_schedules as schedules  # noqa: F401  dl.optimizers.schedules.X, Keras' path
# the schedules' old home was this package: dl.optimizers.ExponentialDecay and friends keep working
from minidl.optimizer_schedules import (SCHEDULES, CosineDecay, CosineDecayRestarts,  # noqa: F401
                                        ExponentialDecay, InverseTimeDecay, LearningRateSchedule,
                                        PiecewiseConstantDecay, PolynomialDecay)
from minidl.optimizers.base import Optimizer
from minidl.optimizers.update_rules import (SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, Lion,  # noqa: F401
                                            Nadam, RMSprop)

OPTIMIZERS = {"sgd": SGD, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW, "adagrad": Adagrad,
              "adadelta": Adadelta, "adamax": Adamax, "nadam": Nadam, "lion": Lion}
# keras.optimizers minidl lacks: asking for one by name says so
KERAS_ONLY_OPTIMIZERS = ("adafactor", "ftrl", "lamb", "loss_scale_optimizer", "muon")


def get(identifier) -> Optimizer:
    """An optimizer from a name ("adam", "SGD", ...; Keras defaults), a config dict
    ``{"class_name": ..., "config": ...}``, or an Optimizer instance (returned as is)."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = OPTIMIZERS.get(str(identifier["class_name"]).lower())
        if cls is None:
            raise ValueError(f"unknown optimizer {identifier['class_name']!r}; known: {', '.join(OPTIMIZERS)}")
        return cls.from_config(identifier.get("config", {}))
    if isinstance(identifier, str):
        cls = OPTIMIZERS.get(identifier.lower())
        if identifier.lower() in KERAS_ONLY_OPTIMIZERS:
            raise NotImplementedError(f"the Keras optimizer {identifier!r} is not supported by minidl; "
                                      f"supported: {', '.join(OPTIMIZERS)}")
        if cls is None:
            raise ValueError(f"unknown optimizer {identifier!r}; known: {', '.join(OPTIMIZERS)}")
        return cls()
    raise ValueError(f"expected an optimizer name ({', '.join(OPTIMIZERS)}) or an Optimizer, got {identifier!r}")


def serialize(optimizer: Optimizer) -> dict:
    """``{"class_name": ..., "config": ...}``, JSON-able; ``get`` rebuilds the optimizer from it."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}
