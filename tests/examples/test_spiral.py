"""examples/spiral.py end to end: a few epochs, its files, a model that reloads the same."""
from __future__ import annotations

import json

import numpy as np

import minidl as dl
from tests.examples.conftest import load_example


def test_the_story_writes_a_model_that_reloads_the_same(tmp_path):
    metrics = load_example("spiral").main(["--epochs", "3", "--verbose", "0", "--out", str(tmp_path)])
    assert {p.name for p in tmp_path.iterdir()} == {"model.npz", "metrics.json", "decision_boundary.png"}
    assert json.loads((tmp_path / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["epochs"] == 3
    assert metrics["reloaded_model_predicts_the_same"] is True
    probabilities = dl.load_model(tmp_path / "model.npz").predict(np.zeros((4, 2), np.float32))
    assert probabilities.shape == (4, 3)
