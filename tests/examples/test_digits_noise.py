"""examples/digits_noise.py end to end on a fake FSDD: two trainings, every noise condition."""
from __future__ import annotations

import json

from tests.examples.conftest import load_example


def test_the_story_measures_every_condition_and_draws_them(fake_fsdd, tmp_path, capsys):
    example = load_example("digits_noise")
    result = example.main(["--epochs", "1", "--verbose", "0", "--data", str(fake_fsdd), "--out", str(tmp_path)])
    assert json.loads((tmp_path / "noise.json").read_text()) == json.loads(json.dumps(result))
    assert (tmp_path / "noise.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for trained in ("clean", "augmented"):
        assert (tmp_path / trained / "model.npz").is_file()
        assert result["training"][trained]["epochs"] == 1
    conditions = result["conditions"]
    assert len(conditions) == 4    # trained clean or augmented x with or without spectral subtraction
    for points in conditions.values():
        assert [p["snr_db"] for p in points] == [40, 20, 10, 5, 0]
        assert [p["clean"] for p in points] == [True, False, False, False, False]
        assert all(0.0 <= p["accuracy"] <= 1.0 for p in points)
    assert "CNN trained augmented, spectral subtraction" in capsys.readouterr().out


def test_a_saved_model_is_heard_in_the_same_conditions_on_the_same_noise(fake_fsdd, tmp_path):
    example = load_example("digits_noise")
    first = example.main(["--epochs", "1", "--verbose", "0", "--data", str(fake_fsdd), "--out", str(tmp_path / "a")])
    again = example.main(["--epochs", "1", "--verbose", "0", "--data", str(fake_fsdd), "--out", str(tmp_path / "b"),
                          "--model", str(tmp_path / "a" / "clean")])
    saved = {k: v for k, v in again["conditions"].items() if k.startswith("the saved model (clean)")}
    assert len(saved) == 2 and len(again["conditions"]) == 6
    for denoising in ("no denoising", "spectral subtraction"):
        assert saved[f"the saved model (clean), {denoising}"] == first["conditions"][f"CNN trained clean, {denoising}"]
