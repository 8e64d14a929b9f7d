"""examples/digits_cnn.py end to end on a fake FSDD: one epoch, its files, the same as the command."""
from __future__ import annotations


import pytest

import audio
from minidl.apps import digits
from minidl.apps.features import FeatureSettings
from tests.examples.conftest import load_example
from tests.examples.digit_story import TINY, check_model_predicts_ten_digits, check_run, check_same_as_the_command


@pytest.fixture(scope="module")
def run(fake_fsdd, feature_cache, tmp_path_factory):
    """(output folder, returned metrics) of one run of the story."""
    out = tmp_path_factory.mktemp("digits_cnn")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINIDL_CACHE", str(feature_cache))
        results = load_example("digits_cnn").main([*TINY, "--data", str(fake_fsdd), "--out", str(out)])
    return out, results


def test_the_story_writes_its_files_and_metrics(run):
    out, results = run
    check_run(out, results, "cnn")


def test_its_model_file_predicts_ten_digits(run, fake_fsdd):
    fsdd = audio.fsdd.FSDD(fake_fsdd)
    _, test = fsdd.split("official")
    check_model_predicts_ten_digits(run[0], digits.dataset_features(fsdd, test[:7], FeatureSettings(), progress=False))


def test_it_trains_what_the_command_trains(run, fake_fsdd, tmp_path):
    check_same_as_the_command(run[0], "cnn", fake_fsdd, tmp_path)


def test_help_shows_the_story_and_the_options(capsys):
    with pytest.raises(SystemExit):
        load_example("digits_cnn").main(["--help"])
    text = capsys.readouterr().out
    assert "convolutional network" in text
    for option in ("--epochs", "--data", "--out", "--split", "--held-out", "--seed", "--backend", "--augment"):
        assert option in text
    assert "--model" not in text
