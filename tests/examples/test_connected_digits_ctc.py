"""examples/connected_digits_ctc.py end to end on a fake FSDD: one epoch of CTC, its files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from minidl.apps import ctc_digits
from tests.examples.conftest import load_example


def test_the_story_trains_decodes_and_draws(fake_fsdd, tmp_path, capsys):
    out = tmp_path / "run"
    metrics = load_example("connected_digits_ctc").main([
        "--fsdd", str(fake_fsdd), "--epochs", "1", "--train-utterances", "6", "--test-utterances", "3",
        "--units", "8", "--beam-width", "2", "--out", str(out)])
    assert {p.name for p in out.iterdir()} == {"model.npz", "metrics.json", "posteriors.png"}
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["test"] == metrics["test"]
    for kind in ("greedy", "beam"):
        assert set(saved["test"][kind]) == {"sequence_accuracy", "wer"}
        assert 0.0 <= saved["test"][kind]["sequence_accuracy"] <= 1.0
    assert saved["test"]["utterances"] == 3 and saved["train_utterances"] == 6
    assert len(saved["history"]) == 1 and np.isfinite(saved["history"][0]["loss"])
    assert saved["features"] == ctc_digits.FEATURES.to_dict()
    for key in ("training_seconds", "parameters", "model", "settings"):
        assert key in saved
    assert "digit error rate" in capsys.readouterr().out
    assert (out / "posteriors.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = ctc_digits.transcribe(out / "model.npz", fake_fsdd / "recordings" / "3_alice_0.wav")
    assert text == "" or text.isdigit()


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit):
        load_example("connected_digits_ctc").parse_args(["--help"])
    text = capsys.readouterr().out
    for option in ("--epochs", "--seed", "--backend", "--out", "--fsdd"):
        assert option in text
