"""Checks every isolated-digit story shares: its files, its metrics, and that it is the command."""
from __future__ import annotations

import json
import pathlib

import numpy as np

import minidl as dl
from minidl.apps import cli, digits

METRIC_FIELDS = {"model", "split", "held_out", "test_accuracy", "train_accuracy", "per_class",
                 "confusion_matrix", "training_seconds", "feature_seconds", "frames", "parameters",
                 "settings", "features", "history", "versions"}
TINY = ["--epochs", "1", "--verbose", "0"]


def check_run(out: pathlib.Path, results: list[dict], kind: str) -> dict:
    """The files of one run are there and say what the run returned; returns metrics.json."""
    assert {p.name for p in out.iterdir()} >= {"model.npz", "metrics.json", "confusion.png", "training_curves.png"}
    for picture in ("confusion.png", "training_curves.png"):
        assert (out / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / "metrics.json").read_text())
    assert METRIC_FIELDS <= set(metrics)
    assert metrics["model"] == kind and metrics["split"] == "official" and metrics["held_out"] is None
    assert len(results) == 1 and results[0]["test_accuracy"] == metrics["test_accuracy"]
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and 0.0 <= metrics["train_accuracy"] <= 1.0
    assert np.array(metrics["confusion_matrix"]).shape == (10, 10)
    assert np.array(metrics["confusion_matrix"]).sum() == 50           # takes 0-4 of 10 digits
    assert len(metrics["history"]["loss"]) == 1
    return metrics


def check_model_predicts_ten_digits(out: pathlib.Path, features: list[np.ndarray]) -> None:
    """model.npz loads alone, as minidl-digits predict loads it, and gives 10 probabilities."""
    recogniser = digits.Recogniser(out / "model.npz")
    probabilities = recogniser.probabilities(features)
    assert probabilities.shape == (len(features), 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def check_same_as_the_command(story_out: pathlib.Path, kind: str, fsdd: pathlib.Path, tmp: pathlib.Path) -> None:
    """`minidl-digits train --recipe none --model KIND` with the same options trains the same weights: the
    example tells the command's story, step for step (so `make demo` gives the command's result)."""
    command_out = tmp / "command"
    cli.main(["train", "--recipe", "none", "--model", kind, *TINY, "--data", str(fsdd), "--out", str(command_out)])
    ours = dl.load_model(story_out / "model.npz").get_weights()
    theirs = dl.load_model(command_out / "model.npz").get_weights()
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)
    story, command = (json.loads((path / "metrics.json").read_text()) for path in (story_out, command_out))
    assert story["test_accuracy"] == command["test_accuracy"] and story["frames"] == command["frames"]
