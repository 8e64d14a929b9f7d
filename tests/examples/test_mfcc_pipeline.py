"""examples/mfcc_pipeline.py on one fake FSDD recording: every stage, and the same MFCCs."""
from __future__ import annotations

import json
import sys

from tests.examples.conftest import load_example


def test_the_stages_reproduce_mfcc_and_are_drawn(fake_data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDL_DATA", str(fake_data_root))   # the example finds FSDD by its lookup order
    monkeypatch.setattr(sys, "argv", ["mfcc_pipeline.py", "--file", "7_alice_0.wav", "--out", str(tmp_path)])
    load_example("mfcc_pipeline").main()
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["stages_equal_mfcc"] is True
    assert result["sample_rate"] == 8000 and result["mfcc_shape"][1] == 13
    assert (tmp_path / "pipeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
