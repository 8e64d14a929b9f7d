"""minidl.apps.ensemble: several saved digit models heard together, trained and saved as a folder."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile

import audio
from minidl.apps import cli, digits, recipes
from minidl.apps.ensemble import MANIFEST, Ensemble, is_ensemble, load_recogniser, train_ensemble, write_manifest
from minidl.apps.features import signal_features
from tests.minidl.apps.fake_fsdd import tone


def test_two_copies_of_one_model_say_what_the_model_says(trained_cnn):
    path = trained_cnn / "model.npz"
    single = digits.Recogniser(path)
    pair = Ensemble([path, path])
    signals = [tone(d, 0, seed=d) for d in range(10)]
    expected = single.probabilities([signal_features(s, single.features) for s in signals])
    np.testing.assert_allclose(pair.signal_probabilities(signals), expected, rtol=1e-5, atol=1e-7)
    assert pair.classify(signals[3])[0] == single.classify(signals[3])[0]


def test_a_member_sure_that_a_digit_is_wrong_vetoes_it(trained_cnn, monkeypatch):
    # the plain mean would answer 1 (0.455 against 0.325); the geometric mean answers 7
    sure_of_one = np.full((1, 10), 0.05 / 8)
    sure_of_one[0, [1, 7]] = 0.9, 0.05
    not_one = np.full((1, 10), 0.04 / 7)
    not_one[0, [1, 7, 3]] = 0.01, 0.6, 0.35
    pair = Ensemble([trained_cnn / "model.npz"] * 2)
    monkeypatch.setattr(pair.members[0], "probabilities", lambda features: sure_of_one)
    monkeypatch.setattr(pair.members[1], "probabilities", lambda features: not_one)
    label, probability = pair.classify(np.zeros(800, np.float32))
    product = np.sqrt(sure_of_one * not_one)
    assert label == "7" and probability == pytest.approx(product[0, 7] / product.sum())


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


def test_members_must_start_from_the_same_mfccs(trained_cnn, monkeypatch):
    real = digits.Recogniser.__init__

    def resampled(self, path):
        real(self, path)
        if getattr(resampled, "seen", False):
            self.features = type(self.features)(sample_rate=16000)
        resampled.seen = True
    monkeypatch.setattr(digits.Recogniser, "__init__", resampled)
    with pytest.raises(ValueError, match=r"reads \(sample rate, preset, n_mfcc\) \(16000, 'htk', 13\)"):
        Ensemble([trained_cnn / "model.npz"] * 2)


def test_members_must_read_the_same_kind_of_features(trained_cnn, trained_logmel_cnn):
    with pytest.raises(ValueError, match=r"reads features of kind 'logmel', .* of kind 'mfcc'; members must share"):
        Ensemble([trained_cnn / "model.npz", trained_logmel_cnn / "model.npz"])
    # what a stream of the ensemble computes: the members' kind
    assert Ensemble([trained_logmel_cnn / "model.npz"] * 2).features.kind == "logmel"


@pytest.fixture(scope="module")
def trained_pair(fake_data, feature_cache, tmp_path_factory):
    """An ensemble folder of two one-epoch CRNN recipes, trained by train_ensemble on the fake data."""
    out = tmp_path_factory.mktemp("pair")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINIDL_CACHE", str(feature_cache))
        patch.setitem(recipes.ENSEMBLES, "pair", ("baseline", "trim"))
        metrics = train_ensemble("pair", out, fsdd=audio.fsdd.FSDD(fake_data), verbose=0, progress=False, epochs=1)
    return out, metrics


def test_train_ensemble_writes_each_member_and_a_manifest_that_scores_as_reported(trained_pair, fake_data):
    out, metrics = trained_pair
    spec = json.loads((out / MANIFEST).read_text())
    assert spec["members"] == ["members/baseline/model.npz", "members/trim/model.npz"]
    for name in ("baseline", "trim"):
        member = json.loads((out / "members" / name / "metrics.json").read_text())
        assert member["settings"]["epochs"] == 1 and metrics["members"][name] == member["test_accuracy"]
    assert (out / "confusion.png").is_file() and json.loads((out / "metrics.json").read_text()) == metrics
    fsdd = audio.fsdd.FSDD(fake_data)
    _, test = fsdd.split("official")
    members = [digits.Recogniser(out / f) for f in spec["members"]]
    each = [m.probabilities(digits.dataset_features(fsdd, test, m.features, progress=False)) for m in members]
    product = np.exp(np.mean(np.log(each), axis=0))
    expected = np.mean(product.argmax(axis=1) == np.array([r.digit for r in test]))
    assert metrics["test_accuracy"] == pytest.approx(expected)
    assert metrics["training_seconds"] == pytest.approx(sum(
        json.loads((out / "members" / n / "metrics.json").read_text())["training_seconds"] for n in ("baseline", "trim")),
        abs=0.02)


def test_the_command_reads_an_ensemble_folder_wherever_it_reads_a_model(trained_pair, fake_data, tmp_path, capsys):
    out, metrics = trained_pair
    assert cli.main(["evaluate", str(out), "--data", str(fake_data)]) == 0
    assert json.loads(capsys.readouterr().out)["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    ensemble = Ensemble.load(out)
    signal = tone(4, 1, seed=3)
    wav = tmp_path / "four.wav"
    soundfile.write(wav, signal, 8000)
    assert cli.main(["predict", str(out), str(wav)]) == 0
    digit = capsys.readouterr().out.split("\t")[1]
    assert digit == ensemble.classify(audio.load(wav, sample_rate=8000)[0])[0]
    padded = tmp_path / "padded.wav"
    soundfile.write(padded, np.concatenate([np.zeros(4000, np.float32), signal, np.zeros(4000, np.float32)]), 8000)
    assert cli.main(["stream", str(out / MANIFEST), str(padded)]) == 0
    assert "digit" in capsys.readouterr().out
    assert cli.main(["export", str(out), str(tmp_path / "x.onnx")]) == 1
    assert "an ensemble of several models; export each member's model.npz" in capsys.readouterr().err


def test_train_with_an_ensemble_recipe_prints_every_member(fake_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(recipes.ENSEMBLES, "pair", ("baseline", "trim"))
    assert cli.main(["train", "--recipe", "pair", "--epochs", "1", "--data", str(fake_data), "--out", str(tmp_path),
                     "--verbose", "0"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("ensemble: test accuracy") and "; baseline " in line and "; trim " in line
    assert is_ensemble(tmp_path) and isinstance(load_recogniser(tmp_path), Ensemble)


def test_load_recogniser_tells_a_model_from_an_ensemble(trained_cnn, trained_pair):
    assert isinstance(load_recogniser(trained_cnn), digits.Recogniser)               # a run folder
    assert isinstance(load_recogniser(trained_cnn / "model.npz"), digits.Recogniser)
    assert not is_ensemble(trained_cnn) and is_ensemble(trained_pair[0] / MANIFEST)


@pytest.mark.parametrize("members, message", [
    (["../elsewhere/model.npz", "members/trim/model.npz"], "is outside the ensemble's folder"),
    (["/etc/model.npz", "members/trim/model.npz"], "is outside the ensemble's folder"),
    ("members/trim/model.npz", "'members' must be a list of file names"),
])
def test_a_manifest_names_only_files_in_its_own_folder(trained_pair, tmp_path, members, message):
    copy = tmp_path / "copy"
    shutil.copytree(trained_pair[0], copy)
    spec = json.loads((copy / MANIFEST).read_text())
    (copy / MANIFEST).write_text(json.dumps({**spec, "members": members}))
    with pytest.raises(ValueError, match=message):
        Ensemble.load(copy)


@pytest.mark.parametrize("text, message", [
    ("{not json", "not an ensemble manifest"),
    (json.dumps({"task": "fsdd-digits", "members": []}), "expected task 'fsdd-digits-ensemble', got 'fsdd-digits'"),
    (json.dumps({"task": "fsdd-digits-ensemble", "combine": "vote"}), "expected combine 'mean_log_probability'"),
])
def test_a_manifest_of_another_kind_is_refused_by_name(tmp_path, text, message):
    (tmp_path / MANIFEST).write_text(text)
    with pytest.raises(ValueError, match=message):
        Ensemble.load(tmp_path)


def test_write_manifest_leaves_no_temporary_file(tmp_path):
    write_manifest(tmp_path, ["members/a/model.npz", "members/b/model.npz"])
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST]
    assert json.loads((tmp_path / MANIFEST).read_text())["members"][1] == "members/b/model.npz"


def test_an_ensemble_gives_one_answer_for_every_rate_channel_count_and_format(trained_pair, tmp_path, capsys):
    from tests.minidl.apps.test_cli import FORMATS, write_formats
    paths = write_formats(tone(2, 1, seed=5), tmp_path / "two")
    assert cli.main(["predict", str(trained_pair[0]), *map(str, paths)]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    reference = rows[0]                      # 8 kHz, mono, 16-bit: FSDD's own format
    for fmt, row in zip(FORMATS, rows):
        assert row[1] == reference[1] and abs(float(row[2]) - float(reference[2])) < 0.05, (fmt, row)
