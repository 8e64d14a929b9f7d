"""minidl.apps.cli's export subcommand: `minidl-digits export model.npz model.onnx`."""
from __future__ import annotations

import json

import numpy as np
import pytest

import minidl as dl
from minidl.apps import cli, ctc_digits, digits
from minidl.apps.features import FeatureSettings

onnx = pytest.importorskip("onnx", reason="the export subcommand needs the onnx package (test extra)")
ort = pytest.importorskip("onnxruntime", reason="running the export needs onnxruntime (test extra)")


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_export_of_a_digit_model_runs_in_onnx_runtime(tmp_path, capsys):
    features = FeatureSettings()
    model = digits.build_crnn(features.n_features, filters=8, units=8, normalize=False)
    digits.save_model(model, tmp_path / "model.npz", "crnn", features, None)
    assert cli.main(["export", str(tmp_path / "model.npz"), str(tmp_path / "model.onnx")]) == 0
    assert json.loads(capsys.readouterr().out)["inputs"] == ["input"]
    runtime = session(tmp_path / "model.onnx")
    x = np.random.default_rng(0).normal(size=(2, 30, features.n_features)).astype(np.float32)
    expected = digits.Recogniser(tmp_path / "model.npz").model.predict(x)
    np.testing.assert_allclose(runtime.run(None, {"input": x})[0], expected, atol=1e-5)
    stored = json.loads(runtime.get_modelmeta().custom_metadata_map["minidl"])
    assert stored["task"] == digits.TASK and stored["features"]["n_mfcc"] == features.n_mfcc


def test_export_of_a_ctc_model_takes_a_mask_and_gives_posteriors(tmp_path, capsys):
    dl.random.seed(0)
    settings = ctc_digits.ModelSettings(filters=8, kernel_size=3, strides=2, units=8)
    model = ctc_digits.build_model(ctc_digits.FEATURES.n_features, settings)
    ctc_digits.save(model, tmp_path / "ctc.npz", ctc_digits.FEATURES, settings)
    assert cli.main(["export", str(tmp_path / "ctc.npz"), str(tmp_path / "ctc.onnx"), "--opset", "18"]) == 0
    x = np.random.default_rng(1).normal(size=(2, 21, ctc_digits.FEATURES.n_features)).astype(np.float32)
    mask = np.arange(21)[None, :] < np.array([[21], [9]])
    posteriors, output_mask = session(tmp_path / "ctc.onnx").run(None, {"input": x, "mask": mask})
    log_probs, lengths = ctc_digits.log_probabilities(model, x, mask)
    assert output_mask.sum(axis=1).tolist() == lengths.tolist() == [11, 5]
    np.testing.assert_allclose(posteriors, np.exp(log_probs.numpy()), atol=1e-5)


def test_export_names_a_file_that_is_not_a_model(tmp_path, capsys):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert cli.main(["export", str(tmp_path / "junk.npz"), str(tmp_path / "out.onnx")]) == 1
    assert capsys.readouterr().err.startswith(f"minidl-digits: {tmp_path / 'junk.npz'}: ")
    assert not (tmp_path / "out.onnx").exists()
