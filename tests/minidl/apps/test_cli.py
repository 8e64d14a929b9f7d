"""minidl.apps.cli, the minidl-digits command: train, evaluate, predict, stream, transcribe."""
from __future__ import annotations

import ast
import json
import pathlib

import numpy as np
import pytest
import soundfile

import minidl as dl
from minidl.apps import cli, ctc_digits
from tests.minidl.apps.fake_fsdd import RATE, tone

ROOT = pathlib.Path(__file__).resolve().parents[3]


def test_the_installed_command_is_this_main():
    assert 'minidl-digits = "minidl.apps.cli:main"' in (ROOT / "pyproject.toml").read_text().splitlines()


def test_train_writes_the_run_into_out(fake_data, tmp_path, capsys):
    assert cli.main(["train", "--recipe", "none", "--model", "cnn", "--epochs", "1", "--data", str(fake_data),
                     "--out", str(tmp_path), "--verbose", "0"]) == 0
    assert "cnn: test accuracy" in capsys.readouterr().out
    assert {"model.npz", "metrics.json", "confusion.png", "training_curves.png"} <= {
        p.name for p in tmp_path.iterdir()}


def test_speaker_split_all_writes_a_summary(fake_data, tmp_path):
    cli.main(["train", "--recipe", "none", "--model", "cnn", "--epochs", "1", "--split", "speaker", "--held-out", "all",
              "--data", str(fake_data), "--out", str(tmp_path), "--verbose", "0"])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["per_speaker"]) == {"alice", "bob"}
    assert summary["worst_accuracy"] <= summary["mean_accuracy"]
    assert (tmp_path / "held_out_alice" / "model.npz").is_file()


def test_train_runs_the_recommended_recipe_unless_told_otherwise(fake_data, tmp_path):
    from minidl.apps.augmentation import AugmentSettings
    from minidl.apps.recipes import RECIPES, RECOMMENDED
    assert cli.parser().parse_args(["train"]).recipe == RECOMMENDED
    cli.main(["train", "--recipe", "baseline", "--epochs", "1", "--data", str(fake_data), "--out", str(tmp_path),
              "--verbose", "0"])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    features, train = RECIPES["baseline"]
    assert metrics["model"] == train["model"] and metrics["settings"]["augment"] is True
    assert AugmentSettings.from_dict(metrics["settings"]["augmentation"]) == train["augmentation"]
    assert metrics["features"] == features.to_dict() and metrics["settings"]["epochs"] == 1


@pytest.mark.parametrize("options, message", [
    (["--model", "cnn"], "--model cnn does not go with --recipe"),
    (["--split", "speaker"], "--split speaker needs --held-out NAME or --held-out all"),
    (["--held-out", "alice"], "--held-out applies to --split speaker"),
])
def test_options_that_do_not_go_together_stop_with_a_message(options, message, fake_data):
    with pytest.raises(SystemExit, match=message):
        cli.main(["train", "--data", str(fake_data), *options])


def test_no_data_stops_with_one_clear_message(tmp_path):
    with pytest.raises(SystemExit, match=r"minidl-digits: FSDD: no recordings .* in .*empty"):
        cli.main(["train", "--data", str(tmp_path / "empty"), "--epochs", "1"])


def test_evaluate_prints_the_accuracy_as_json(trained_cnn, fake_data, capsys):
    assert cli.main(["evaluate", str(trained_cnn / "model.npz"), "--data", str(fake_data)]) == 0
    result = json.loads(capsys.readouterr().out)
    saved = json.loads((trained_cnn / "metrics.json").read_text())
    assert result["files"] == 100 and result["test_accuracy"] == saved["test_accuracy"]


def test_predict_prints_path_digit_probability_and_fails_on_a_broken_file(trained_cnn, tmp_path, capsys):
    good = tmp_path / "seven.wav"
    soundfile.write(good, tone(7, 0, seed=5), RATE)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt not really")
    code = cli.main(["predict", str(trained_cnn / "model.npz"), str(good), str(broken)])
    captured = capsys.readouterr()
    path, digit, probability = captured.out.strip().split("\t")
    assert path == str(good) and digit == "7" and 0 < float(probability) <= 1
    assert "broken.wav" in captured.err
    assert code == 1
    assert cli.main(["predict", str(trained_cnn / "model.npz"), str(good), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["digit"] == "7"


def test_stream_prints_each_digit_and_fails_on_a_missing_file(trained_cnn, tmp_path, capsys):
    gap = np.zeros(RATE // 3, dtype=np.float32) + 0.003 * np.random.default_rng(0).normal(size=RATE // 3)
    soundfile.write(tmp_path / "five.wav", np.concatenate([gap, tone(5, 0, seed=1), gap]), RATE)
    assert cli.main(["stream", str(trained_cnn / "model.npz"), str(tmp_path / "five.wav")]) == 0
    assert "digit 5" in capsys.readouterr().out
    assert cli.main(["stream", str(trained_cnn / "model.npz"), str(tmp_path / "missing.wav")]) == 1
    assert "missing.wav" in capsys.readouterr().err


def test_transcribe_prints_the_digit_string(tmp_path, capsys):
    dl.random.seed(0)
    settings = ctc_digits.ModelSettings(filters=8, kernel_size=3, strides=2, units=8)
    ctc_digits.save(ctc_digits.build_model(ctc_digits.FEATURES.n_features, settings), tmp_path / "ctc.npz",
                    ctc_digits.FEATURES, settings)
    soundfile.write(tmp_path / "two.wav", tone(2, 0), RATE)
    assert cli.main(["transcribe", str(tmp_path / "ctc.npz"), str(tmp_path / "two.wav")]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == "" or printed.isdigit()
    assert cli.main(["transcribe", str(tmp_path / "ctc.npz"), str(tmp_path / "missing.wav")]) == 1
    assert "missing.wav" in capsys.readouterr().err


def apps_imports() -> dict[str, set[str]]:
    """For each module of minidl/apps, the other apps modules it imports (parsed, not run)."""
    folder = ROOT / "minidl" / "apps"
    names = {path.stem for path in folder.glob("*.py")} - {"__init__"}
    graph = {}
    for name in names:
        tree = ast.parse((folder / f"{name}.py").read_text())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "minidl.apps":
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("minidl.apps."):
                found.add(node.module.split(".")[2])
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[2] for a in node.names if a.name.startswith("minidl.apps.")}
        graph[name] = found & names
    return graph


def test_the_apps_import_one_way_with_the_command_on_top():
    graph = apps_imports()
    done, visiting = set(), []

    def visit(name):   # depth-first: meeting a module still on the path is a cycle
        if name in visiting:
            raise AssertionError("import cycle: " + " -> ".join(visiting[visiting.index(name):] + [name]))
        if name not in done:
            visiting.append(name)
            for other in sorted(graph[name]):
                visit(other)
            visiting.pop()
            done.add(name)

    for name in sorted(graph):
        visit(name)
    assert not any("cli" in imported for imported in graph.values())
    assert {"digits", "streaming", "ctc_digits"} <= graph["cli"]
