"""minidl.apps.ensemble: the mean of several saved digit models."""
from __future__ import annotations

import numpy as np
import pytest

from minidl.apps import digits
from minidl.apps.ensemble import Ensemble
from minidl.apps.features import signal_features
from tests.minidl.apps.fake_fsdd import tone


def test_two_copies_of_one_model_say_what_the_model_says(trained_cnn):
    path = trained_cnn / "model.npz"
    single = digits.Recogniser(path)
    pair = Ensemble([path, path])
    signals = [tone(d, 0, seed=d) for d in range(10)]
    expected = single.probabilities([signal_features(s, single.features) for s in signals])
    np.testing.assert_allclose(pair.probabilities(signals), expected, rtol=1e-6)
    assert pair.classify(signals[3])[0] == single.classify(signals[3])[0]


def test_the_mean_decides_where_the_members_disagree(trained_cnn, monkeypatch):
    pair = Ensemble([trained_cnn / "model.npz"] * 2)
    confident_wrong = np.eye(10)[[1]] * 0.6 + 0.04        # member 1: digit 1 at 0.64
    unsure_right = np.eye(10)[[7]] * 0.9 + 0.01           # member 2: digit 7 at 0.91
    monkeypatch.setattr(pair.members[0], "probabilities", lambda features: confident_wrong)
    monkeypatch.setattr(pair.members[1], "probabilities", lambda features: unsure_right)
    label, probability = pair.classify(np.zeros(800, np.float32))
    assert label == "7" and probability == pytest.approx((0.91 + 0.04) / 2)


def test_an_ensemble_needs_two_members_with_the_same_labels(trained_cnn, monkeypatch):
    with pytest.raises(ValueError, match="needs at least two model files, got 1"):
        Ensemble([trained_cnn / "model.npz"])
    real = digits.Recogniser.__init__

    def relabelled(self, path):
        real(self, path)
        if len(getattr(relabelled, "seen", [])) == 1:
            self.labels = list("abcdefghij")
        relabelled.seen = [*getattr(relabelled, "seen", []), path]
    monkeypatch.setattr(digits.Recogniser, "__init__", relabelled)
    with pytest.raises(ValueError, match="has labels"):
        Ensemble([trained_cnn / "model.npz"] * 2)
