import json
import pathlib

import numpy as np
import pytest
import soundfile

from minidl.apps import digits
from tests.minidl.apps.fake_fsdd import RATE, make_fake_fsdd, tone

METRIC_FIELDS = {"model", "split", "test_accuracy", "train_accuracy", "per_class", "confusion_matrix",
                 "training_seconds", "settings", "features", "versions", "history", "parameters"}


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory):
    return make_fake_fsdd(tmp_path_factory.mktemp("fsdd"))


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDL_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def trained_cnn(fake_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn")
    digits.main(["train", "--model", "cnn", "--epochs", "12", "--data", str(fake_data), "--out", str(out),
                 "--verbose", "0"])
    return out


def test_cnn_run_writes_every_file_and_learns_the_tones(trained_cnn):
    for name in ("model.npz", "metrics.json", "confusion.png", "training_curves.png"):
        assert (trained_cnn / name).is_file()
    metrics = json.loads((trained_cnn / "metrics.json").read_text())
    assert METRIC_FIELDS <= set(metrics)
    assert np.array(metrics["confusion_matrix"]).sum() == 100      # takes 0-4 of 2 speakers x 10 digits
    assert metrics["test_accuracy"] > 0.8


@pytest.mark.parametrize("story", ["lstm", "crnn"])
def test_recurrent_stories_run_end_to_end(story, fake_data, tmp_path):
    import importlib
    module = importlib.import_module(f"examples.digits_{story}")
    results = module.main(["--epochs", "1", "--data", str(fake_data), "--out", str(tmp_path), "--verbose", "0"])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert METRIC_FIELDS <= set(metrics) and metrics["model"] == story
    assert results[0]["test_accuracy"] == metrics["test_accuracy"]


def test_speaker_split_all_writes_a_summary(fake_data, tmp_path):
    digits.main(["train", "--model", "cnn", "--epochs", "1", "--split", "speaker", "--held-out", "all",
                 "--data", str(fake_data), "--out", str(tmp_path), "--verbose", "0"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["per_speaker"]) == {"alice", "bob"}
    assert summary["worst_accuracy"] <= summary["mean_accuracy"]


def test_predict_prints_path_digit_probability_and_fails_on_a_broken_file(trained_cnn, tmp_path, capsys):
    good = tmp_path / "seven.wav"
    soundfile.write(good, tone(7, 0, seed=5), RATE)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt not really")
    code = digits.main(["predict", str(trained_cnn / "model.npz"), str(good), str(broken)])
    captured = capsys.readouterr()
    path, digit, probability = captured.out.strip().split("\t")
    assert path == str(good) and digit == "7" and 0 < float(probability) <= 1
    assert "broken.wav" in captured.err
    assert code == 1
    assert digits.main(["predict", str(trained_cnn / "model.npz"), str(good), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["digit"] == "7"


def test_stream_finds_each_digit_in_a_sequence(trained_cnn, tmp_path):
    gap = (0.003 * np.random.default_rng(0).normal(size=RATE // 3)).astype(np.float32)  # a quiet room
    signal = np.concatenate([gap, tone(3, 0, seed=1), gap, tone(8, 0, seed=2), gap])
    path = tmp_path / "three_eight.wav"
    soundfile.write(path, signal, RATE)
    found = list(digits.stream_file(trained_cnn / "model.npz", path))
    assert [f["digit"] for f in found] == ["3", "8"]
    assert all(0 < f["latency_s"] < 0.5 for f in found)


def test_recogniser_refuses_a_model_without_digit_metadata(tmp_path):
    import minidl as dl
    from minidl import layers
    model = dl.Sequential([layers.Dense(2, input_shape=(3,))])
    model.save(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="not a spoken-digit model"):
        digits.Recogniser(tmp_path / "other.npz")


def test_coverage_length_holds_the_stated_share():
    lengths = np.arange(1, 101)
    assert digits.coverage_length(lengths, 0.98) == 99
    assert np.mean(lengths <= digits.coverage_length(lengths, 0.98)) >= 0.98


def test_fixed_length_pads_and_cuts_at_the_end():
    a, b = np.ones((3, 2)), np.full((6, 2), 2.0)
    out = digits.fixed_length([a, b], 4)
    assert out.shape == (2, 4, 2)
    np.testing.assert_array_equal(out[0, 3], 0)
    np.testing.assert_array_equal(out[1], 2.0)


def test_padded_batches_pad_each_batch_to_its_own_longest():
    features = [np.ones((n, 3)) for n in (5, 2, 9, 3)]
    batches = digits.PaddedBatches(features, np.arange(4), batch_size=2, shuffle=False)
    shapes = sorted(batches[i][0].shape for i in range(len(batches)))
    assert shapes == [(2, 3, 3), (2, 9, 3)]


def test_demo_settings_are_the_documented_ones():
    makefile = (pathlib.Path(__file__).parents[3] / "Makefile").read_text()
    readme = (pathlib.Path(__file__).parents[3] / "README.md").read_text()
    demo = next(line for line in makefile.splitlines() if "examples/digits_cnn.py" in line)
    assert "--epochs 25" in demo and "--split official" in demo
    assert "--epochs 25" in readme and digits.DEFAULT_EPOCHS["cnn"] == 25


def test_same_seed_gives_the_same_model_and_accuracy(fake_data, tmp_path):
    import minidl as dl
    runs = []
    for name in ("a", "b"):
        digits.main(["train", "--model", "cnn", "--epochs", "1", "--seed", "3", "--data", str(fake_data),
                     "--out", str(tmp_path / name), "--verbose", "0"])
        runs.append((json.loads((tmp_path / name / "metrics.json").read_text())["test_accuracy"],
                     dl.load_model(tmp_path / name / "model.npz").get_weights()))
    assert runs[0][0] == runs[1][0]
    for first, second in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(first, second)


def test_no_data_stops_with_one_clear_message(tmp_path):
    with pytest.raises(SystemExit, match=r"minidl-digits: FSDD: no recordings .* in .*empty"):
        digits.main(["train", "--data", str(tmp_path / "empty"), "--epochs", "1"])
