"""minidl.apps.cli, the minidl-digits command: train, evaluate, predict, stream, transcribe."""
from __future__ import annotations

import ast
import json
import math
import os
import pathlib
import re
import shutil

import numpy as np
import pytest
import soundfile
from scipy.signal import resample_poly

import audio
import minidl as dl
from audio.io import printable
from minidl.apps import cli, ctc_digits, digits
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
    (["--model", "cnn"], "--model cnn does not go with --recipe ensemble, which trains an ensemble"),
    (["--recipe", "trim", "--model", "cnn"], "--model cnn does not go with --recipe trim, which trains a crnn"),
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


# --- one clear line, never a traceback (issue 14) ----------------------------------------------

def error_line(capsys, name) -> str:
    """The one line that the command wrote to stderr, checked to start by naming ``name``."""
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert lines[0].startswith(f"minidl-digits: {printable(name)}: "), lines[0]
    assert "\x1b" not in captured.err + captured.out
    return lines[0]


def rewrite_config(good: pathlib.Path, target: pathlib.Path, change) -> None:
    """Copy the model file ``good`` to ``target`` with ``change(document)`` applied to its JSON."""
    with np.load(good, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    document = json.loads(arrays["config"].tobytes().decode("utf-8"))
    change(document)
    arrays["config"] = np.frombuffer(json.dumps(document).encode("utf-8"), dtype=np.uint8)
    np.savez(target, **arrays)


def without_member(good: pathlib.Path, target: pathlib.Path, member: str) -> None:
    with np.load(good, allow_pickle=False) as archive:
        np.savez(target, **{name: archive[name] for name in archive.files if name != member})


def with_config_bytes(good: pathlib.Path, target: pathlib.Path, raw: bytes) -> None:
    with np.load(good, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["config"] = np.frombuffer(raw, dtype=np.uint8)
    np.savez(target, **arrays)


def metadata_change(**values):
    return lambda document: document["metadata"].update(values)


# Each writes a hostile model file at ``target`` from the good one (or nothing: a missing file).
HOSTILE_MODELS = {
    "truncated": lambda good, target: target.write_bytes(good.read_bytes()[:good.stat().st_size // 2]),
    "empty": lambda good, target: target.write_bytes(b""),
    "not a zip": lambda good, target: target.write_bytes(b"this is not a model file\n" * 40),
    "a .npy array": lambda good, target: np.save(open(target, "wb"), np.zeros(3)),
    "a folder": lambda good, target: target.mkdir(),
    "missing": lambda good, target: None,
    "no weight_0002": lambda good, target: without_member(good, target, "weight_0002"),
    "no config": lambda good, target: without_member(good, target, "config"),
    "config not JSON": lambda good, target: with_config_bytes(good, target, b"{not json"),
    "config a JSON list": lambda good, target: with_config_bytes(good, target, b"[1, 2]"),
    "metadata without 'model'": lambda good, target: rewrite_config(
        good, target, lambda d: d["metadata"].pop("model")),          # KeyError: 'model' before
    "nine labels": lambda good, target: rewrite_config(
        good, target, metadata_change(labels=[str(d) for d in range(9)])),  # IndexError for a 9
    "features a list": lambda good, target: rewrite_config(good, target, metadata_change(features=[])),
    "sample_rate 1e7": lambda good, target: rewrite_config(
        good, target, lambda d: d["metadata"]["features"].update(sample_rate=10 ** 7)),
    "wrong task": lambda good, target: rewrite_config(
        good, target, metadata_change(task="connected-digits-ctc")),
    "an ANSI label": lambda good, target: rewrite_config(
        good, target, metadata_change(labels=["\x1b[2J\x1b[31m" + str(d) for d in range(10)])),
}


@pytest.fixture
def nine_wav(tmp_path) -> pathlib.Path:
    path = tmp_path / "nine.wav"
    soundfile.write(path, tone(9, 0, seed=4), RATE)
    return path


@pytest.mark.parametrize("case", HOSTILE_MODELS)
def test_predict_names_a_hostile_model_file_on_one_line(case, trained_cnn, tmp_path, nine_wav, capsys):
    model = tmp_path / "hostile.npz"
    HOSTILE_MODELS[case](trained_cnn / "model.npz", model)
    assert cli.main(["predict", str(model), str(nine_wav)]) == 1
    error_line(capsys, model)


@pytest.mark.parametrize("command", ["stream", "evaluate"])
@pytest.mark.parametrize("case", ["truncated", "missing", "metadata without 'model'", "features a list",
                                  "sample_rate 1e7", "wrong task"])
def test_stream_and_evaluate_name_a_hostile_model_file_on_one_line(command, case, trained_cnn, fake_data,
                                                                   tmp_path, nine_wav, capsys):
    model = tmp_path / "hostile.npz"
    HOSTILE_MODELS[case](trained_cnn / "model.npz", model)
    argv = [command, str(model)] + ([str(nine_wav)] if command == "stream" else ["--data", str(fake_data)])
    assert cli.main(argv) == 1
    error_line(capsys, model)


def tiny_ctc_model(path: pathlib.Path) -> pathlib.Path:
    dl.random.seed(0)
    settings = ctc_digits.ModelSettings(filters=8, kernel_size=3, strides=2, units=8)
    ctc_digits.save(ctc_digits.build_model(ctc_digits.FEATURES.n_features, settings), path,
                    ctc_digits.FEATURES, settings)
    return path


@pytest.mark.parametrize("case", ["truncated", "not a zip", "missing", "no weight_0002", "config not JSON",
                                  "features a list", "sample_rate 1e7", "a digit model"])
def test_transcribe_names_a_hostile_model_file_on_one_line(case, trained_cnn, tmp_path, nine_wav, capsys):
    good = tiny_ctc_model(tmp_path / "ctc.npz")
    model = tmp_path / "hostile.npz"
    if case == "a digit model":
        model.write_bytes((trained_cnn / "model.npz").read_bytes())
    else:
        HOSTILE_MODELS[case](good, model)
    assert cli.main(["transcribe", str(model), str(nine_wav)]) == 1
    error_line(capsys, model)


def test_transcribe_refuses_features_missing_from_the_metadata(tmp_path, nine_wav, capsys):
    model = tmp_path / "hostile.npz"
    rewrite_config(tiny_ctc_model(tmp_path / "ctc.npz"), model, lambda d: d["metadata"].pop("features"))
    assert cli.main(["transcribe", str(model), str(nine_wav)]) == 1    # KeyError: 'features' before
    assert "features" in error_line(capsys, model)


@pytest.mark.parametrize("command", ["predict", "stream", "transcribe"])
@pytest.mark.parametrize("case", ["missing", "a folder", "not audio", "a 1 Hz header"])
def test_each_command_names_a_bad_input_file_on_one_line(command, case, trained_cnn, tmp_path, capsys):
    model = trained_cnn / "model.npz" if command != "transcribe" else tiny_ctc_model(tmp_path / "ctc.npz")
    bad = tmp_path / "bad.wav"
    if case == "a folder":
        bad.mkdir()
    elif case == "not audio":
        bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt not really")
    elif case == "a 1 Hz header":
        soundfile.write(bad, np.zeros(4000, dtype=np.float32), 1)
    assert cli.main([command, str(model), str(bad)]) == 1
    error_line(capsys, bad)


def test_predict_goes_on_after_a_bad_file_and_fails_at_the_end(trained_cnn, tmp_path, nine_wav, capsys):
    bad = tmp_path / "claims_1_hz.wav"
    soundfile.write(bad, np.zeros(4000, dtype=np.float32), 1)   # upsampled 8,000x before issue 14
    assert cli.main(["predict", str(trained_cnn / "model.npz"), str(bad), str(nine_wav)]) == 1
    captured = capsys.readouterr()
    assert captured.out.split("\t")[:2] == [str(nine_wav), "9"]
    assert captured.err.startswith(f"minidl-digits: {bad}: ") and captured.err.count("\n") == 1


def test_a_permission_error_on_an_input_is_one_line(trained_cnn, tmp_path, nine_wav, monkeypatch, capsys):
    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(audio, "load", refuse)
    assert cli.main(["predict", str(trained_cnn / "model.npz"), str(nine_wav)]) == 1
    assert error_line(capsys, nine_wav).endswith(": permission denied")
    assert cli.main(["stream", str(trained_cnn / "model.npz"), str(nine_wav)]) == 1
    error_line(capsys, nine_wav)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_model_file_is_one_line(trained_cnn, tmp_path, nine_wav, capsys):
    model = tmp_path / "locked.npz"
    model.write_bytes((trained_cnn / "model.npz").read_bytes())
    model.chmod(0)
    assert cli.main(["predict", str(model), str(nine_wav)]) == 1
    error_line(capsys, model)


@pytest.mark.parametrize("command", ["predict", "stream"])
def test_a_real_bug_still_shows_its_traceback(command, trained_cnn, nine_wav, monkeypatch):
    def broken(self, features):
        raise ZeroDivisionError("a bug, not a bad file")
    monkeypatch.setattr(digits.Recogniser, "probabilities", broken)
    with pytest.raises(ZeroDivisionError):
        cli.main([command, str(trained_cnn / "model.npz"), str(nine_wav)])


def test_evaluate_names_a_bad_recording_and_bad_options_on_one_line(trained_cnn, fake_data, tmp_path, capsys):
    model = str(trained_cnn / "model.npz")
    with pytest.raises(SystemExit, match=r"^minidl-digits: .*held_out"):
        cli.main(["evaluate", model, "--data", str(fake_data), "--split", "speaker"])
    data = tmp_path / "fsdd"
    shutil.copytree(fake_data, data)
    (data / "recordings" / "3_bob_2.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt broken, longer")
    assert cli.main(["evaluate", model, "--data", str(data)]) == 1
    lines = [line for line in capsys.readouterr().err.split("\n") if "minidl-digits" in line]  # after the bar
    assert len(lines) == 1 and lines[0].startswith("minidl-digits: cannot ") and "3_bob_2.wav" in lines[0]


# --- the resource bounds of predict and stream ------------------------------------------------

def test_predict_refuses_a_file_over_its_limit_and_stream_reads_it(trained_cnn, tmp_path, monkeypatch, capsys):
    assert digits.MAX_PREDICT_SECONDS == 600
    gap = (0.003 * np.random.default_rng(0).normal(size=RATE // 3)).astype(np.float32)
    long = tmp_path / "long.wav"
    soundfile.write(long, np.concatenate([gap, tone(5, 0, seed=1), gap, tone(2, 0, seed=2), gap]), RATE)
    monkeypatch.setattr(digits, "MAX_PREDICT_SECONDS", 1.0)
    assert cli.main(["predict", str(trained_cnn / "model.npz"), str(long)]) == 1
    assert "over the limit of 1 s" in error_line(capsys, long)
    assert cli.main(["stream", str(trained_cnn / "model.npz"), str(long)]) == 0
    assert re.findall(r"digit (\S+)", capsys.readouterr().out) == ["5", "2"]


# --- arguments are validated by argparse ------------------------------------------------------

@pytest.mark.parametrize("argv, option", [
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--batch-size", "-4"], "--batch-size"),
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--epochs", "-3"], "--epochs"),
    (["train", "--seed", "-1"], "--seed"),
    *[(["stream", "model.npz", "file.wav", "--chunk-ms", value], "--chunk-ms")
      for value in ("0", "nan", "1e-9", "-5", "inf", "1e9", "ten")],
])
def test_bad_numbers_are_argparse_errors_naming_the_option(argv, option, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.parser().parse_args(argv)
    assert stop.value.code == 2
    assert f"argument {option}" in capsys.readouterr().err


def test_good_numbers_parse():
    assert cli.parser().parse_args(["train", "--batch-size", "1", "--epochs", "1", "--seed", "0"]).epochs == 1
    assert cli.parser().parse_args(["stream", "m.npz", "f.wav", "--chunk-ms", "1"]).chunk_ms == 1.0
    assert cli.parser().parse_args(["stream", "m.npz", "f.wav", "--chunk-ms", "60000"]).chunk_ms == 60000.0
    assert cli.parser().parse_args(["train"]).epochs is None          # the recipe's default


def test_negative_epochs_leave_a_trained_model_alone(fake_data, tmp_path, trained_cnn):
    (tmp_path / "model.npz").write_bytes((trained_cnn / "model.npz").read_bytes())
    before = (tmp_path / "model.npz").read_bytes()
    with pytest.raises(SystemExit):
        cli.main(["train", "--recipe", "none", "--model", "cnn", "--epochs", "-3", "--data", str(fake_data),
                  "--out", str(tmp_path), "--verbose", "0"])
    assert (tmp_path / "model.npz").read_bytes() == before


# --- names and labels are escaped on the terminal ---------------------------------------------

def test_a_newline_in_a_file_name_cannot_forge_an_output_line(trained_cnn, tmp_path, capsys):
    forged = tmp_path / "seven.wav\nfake.wav\t3\t1.0000"
    soundfile.write(forged, tone(7, 0, seed=5), RATE, format="WAV")
    missing = tmp_path / "gone.wav\nminidl-digits: all is well"
    assert cli.main(["predict", str(trained_cnn / "model.npz"), str(forged), str(missing)]) == 1
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 1 and captured.out.startswith(printable(forged) + "\t7\t")
    assert captured.err.count("\n") == 1 and captured.err.startswith(f"minidl-digits: {printable(missing)}: ")
    assert cli.main(["stream", str(trained_cnn / "model.npz"), str(missing)]) == 1
    error_line(capsys, missing)


# --- predict and stream answer alike for any rate, channel count and sample format (issue 13) ------

FORMATS = [(rate, channels, subtype) for rate in (8000, 16000, 44100, 48000) for channels in (1, 2)
           for subtype in ("PCM_16", "PCM_24", "FLOAT")]


def write_formats(signal: np.ndarray, folder: pathlib.Path) -> list[pathlib.Path]:
    """``signal`` (8 kHz) written at each of FORMATS: resampled, duplicated to stereo, quantised."""
    folder.mkdir()
    paths = []
    for rate, channels, subtype in FORMATS:
        common = math.gcd(rate, RATE)
        at_rate = resample_poly(signal, rate // common, RATE // common).astype(np.float32)
        data = np.stack([at_rate] * channels, axis=1) if channels > 1 else at_rate
        path = folder / f"{rate}_{channels}ch_{subtype}.wav"
        soundfile.write(path, np.clip(data, -1, 1), rate, subtype=subtype)
        paths.append(path)
    return paths


def test_predict_and_stream_give_one_answer_for_every_format(trained_cnn, tmp_path, capsys):
    model = str(trained_cnn / "model.npz")
    single = write_formats(tone(6, 0, seed=3), tmp_path / "six")
    assert cli.main(["predict", model, *map(str, single)]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [row[0] for row in rows] == [str(p) for p in single]
    assert {row[1] for row in rows} == {"6"}
    reference = float(rows[0][2])           # 8 kHz, mono, 16-bit: FSDD's own format
    for (rate, channels, subtype), row in zip(FORMATS, rows):
        assert abs(float(row[2]) - reference) < 0.05, (rate, channels, subtype, row)

    gap = (0.003 * np.random.default_rng(0).normal(size=RATE // 3)).astype(np.float32)
    sequence = np.concatenate([gap, tone(3, 0, seed=1), gap, tone(8, 0, seed=2), gap])
    for fmt, path in zip(FORMATS, write_formats(sequence, tmp_path / "three_eight")):
        assert cli.main(["stream", model, str(path)]) == 0
        assert re.findall(r"digit (\S+)", capsys.readouterr().out) == ["3", "8"], fmt


def test_verbose_defaults_to_auto_and_refuses_other_levels(capsys):
    assert cli.parser().parse_args(["train"]).verbose == "auto"    # a log file gets one line per epoch
    assert cli.parser().parse_args(["train", "--verbose", "2"]).verbose == 2
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["train", "--verbose", "3"])
    assert "--verbose" in capsys.readouterr().err


def test_train_says_when_openblas_is_held_to_a_named_core(tmp_path, capsys, monkeypatch):
    """OPENBLAS_CORETYPE set: once the options are checked, train names it on stderr before it
    starts (here it then stops: no data); options that do not go together stop without it."""
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    with pytest.raises(SystemExit):
        cli.main(["train", "--data", str(tmp_path / "empty"), "--epochs", "1"])
    assert "minidl-digits: note: OPENBLAS_CORETYPE=Haswell is set" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="--split speaker needs --held-out"):
        cli.main(["train", "--data", str(tmp_path / "empty"), "--split", "speaker"])
    assert "OPENBLAS_CORETYPE" not in capsys.readouterr().err
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    with pytest.raises(SystemExit):
        cli.main(["train", "--data", str(tmp_path / "empty"), "--epochs", "1"])
    assert "OPENBLAS_CORETYPE" not in capsys.readouterr().err
