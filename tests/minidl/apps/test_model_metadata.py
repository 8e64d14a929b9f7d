"""minidl.apps.model_metadata: each check of a saved recogniser's metadata alone. The checks as the
recognisers make them, on hostile files, are in test_digits.py, test_ctc_digits.py and test_cli.py."""
from __future__ import annotations

import pytest

from minidl.apps import model_metadata as checks
from minidl.apps.features import FeatureSettings


def test_feature_settings_take_the_defaults_given_for_missing_keys():
    utterance = FeatureSettings(normalization="utterance")
    assert checks.feature_settings_from_metadata({"n_mfcc": 13}) == FeatureSettings()
    assert checks.feature_settings_from_metadata({"n_mfcc": 13}, utterance) == utterance


@pytest.mark.parametrize("values, message", [
    ({"sample_rate": 999}, "sample_rate must be an integer from 1000 to 384000 Hz, got 999"),
    ({"sample_rate": 384_001}, "got 384001"),
    ({"sample_rate": True}, "got True"),
    ({"n_mfcc": 0}, "n_mfcc must be an integer from 1 to 128, got 0"),
    ({"delta_order": 3}, "delta_order must be 0, 1 or 2, got 3"),
    ({"n_mfcc": 40}, "make no features"),             # the HTK preset has 26 mel filters
    ({"unknown": 1, "preset": "mel"}, "make no features"),
    ("htk", "must be a dict of feature settings, got 'htk'"),
    ({"kind": "mel"}, "are not feature settings: FeatureSettings: kind must be 'mfcc' or 'logmel'"),
    ({"kind": ["logmel"]}, "kind must be 'mfcc' or 'logmel'"),
])
def test_feature_settings_that_make_no_sane_features_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        checks.feature_settings_from_metadata(values)


def test_feature_settings_of_log_mels_are_read_with_their_kind():
    settings = checks.feature_settings_from_metadata({"kind": "logmel", "trim_db": 30.0})
    assert settings == FeatureSettings(kind="logmel", trim_db=30.0) and settings.n_features == 52


def test_frames_labels_task_and_choice():
    assert checks.check_frames(None, required=False) is None and checks.check_frames(40, required=True) == 40
    with pytest.raises(ValueError, match=r"from 1 to 100,000, got None"):
        checks.check_frames(None, required=True)
    assert checks.check_labels(list("0123456789"), 10) == list("0123456789")
    for bad in (["a\\b"] * 10, ["\u202e9"] * 10, ["x" * 33] * 10):   # backslash, bidi override, too long
        with pytest.raises(ValueError, match="labels must be a list of 10 printable strings"):
            checks.check_labels(bad, 10)
    with pytest.raises(ValueError, match=r"not a model \(its metadata names task 'other', expected 'mine'\); "):
        checks.check_task({"task": "other"}, "mine", "a model", "fix")
    with pytest.raises(ValueError, match=r"unknown kind \['cnn'\]; expected one of cnn, lstm"):
        checks.check_choice(["cnn"], ("cnn", "lstm"), "kind")
