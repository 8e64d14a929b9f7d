"""Several digit models as one: the mean of their probabilities.

Models trained alike but not identically (another seed, another normalisation of the same
features) make different mistakes on a voice none of them has heard, so the mean of their
probabilities is right more often than any one of them; Dietterich (2000, "Ensemble methods
in machine learning") gives the reasons. Each member reads a recording through its own
feature settings (its model file carries them), so members need not share a front end:

    signal ─member 1's features─► model 1 ─► p1 ─┐
    signal ─member 2's features─► model 2 ─► p2 ─┴─ mean ─► argmax ─► digit

``benchmarks/digits.py --ensemble A B`` measures what a pair of recipes buys on held-out
speakers from the models their runs saved.
"""
from __future__ import annotations

import pathlib

import numpy as np

from minidl.apps.digits import Recogniser
from minidl.apps.features import signal_features


class Ensemble:
    """The mean of several saved digit models: ``Ensemble([path_a, path_b]).classify(signal)``.

    Raises:
        ValueError: fewer than two paths, or members whose labels differ.
        As Recogniser for each member file.
    """

    def __init__(self, paths: list[str | pathlib.Path]):
        paths = list(paths)
        if len(paths) < 2:
            raise ValueError(f"Ensemble: needs at least two model files, got {len(paths)}")
        self.members = [Recogniser(path) for path in paths]
        self.labels = self.members[0].labels
        for member in self.members[1:]:
            if member.labels != self.labels:
                raise ValueError(f"Ensemble: {member.path} has labels {member.labels}, "
                                 f"{self.members[0].path} has {self.labels}")

    def probabilities(self, signals: list[np.ndarray]) -> np.ndarray:
        """(n, labels) mean probabilities for n signals at the members' sample rate."""
        return np.mean([member.probabilities([signal_features(s, member.features) for s in signals])
                        for member in self.members], axis=0)

    def classify(self, signal: np.ndarray) -> tuple[str, float]:
        """(label, mean probability) for one signal."""
        p = self.probabilities([signal])[0]
        return self.labels[int(p.argmax())], float(p.max())


__all__ = ["Ensemble"]
