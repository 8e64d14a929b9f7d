"""minidl.apps.tta: one digit model scoring each recording at a few speeds, averaged."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import audio
from audio.augment import speed_perturb
from audio.silence import trim_silence
from minidl.apps import digits, tta
from minidl.apps.features import signal_features

FRAME_SECONDS_HOP = 0.01   # the HTK preset's 10 ms hop: frames per second of signal


@pytest.fixture
def scored(trained_cnn, fake_data):
    """A Recogniser of the trained CNN that trims at 20 dB, its FSDD, and 20 test recordings
    (both speakers, every digit), so trimming and speed both change what the model hears."""
    recogniser = digits.Recogniser(trained_cnn / "model.npz")
    recogniser.features = dataclasses.replace(recogniser.features, trim_db=20.0)
    fsdd = audio.fsdd.FSDD(fake_data)
    _, test = fsdd.split("official")
    return recogniser, fsdd, [r for r in test if r.take == 0]


def test_the_clean_version_alone_is_the_plain_model_bit_for_bit(scored):
    recogniser, fsdd, recordings = scored
    plain = recogniser.recording_probabilities(fsdd, recordings, progress=False)
    alone = tta.tta_probabilities(recogniser, fsdd, recordings, speeds=(1.0,), progress=False)
    assert alone.shape == (20, 10)
    np.testing.assert_array_equal(alone, plain)


def test_the_average_is_the_mean_log_probability_of_the_versions_scored_by_hand(scored):
    recogniser, fsdd, recordings = scored
    settings = recogniser.features
    by_hand = {1.0: recogniser.recording_probabilities(fsdd, recordings, progress=False)}
    for factor in (0.9, 1.1):
        features = []
        for recording in recordings:
            signal, _ = audio.load(recording.path, sample_rate=settings.sample_rate)
            signal = trim_silence(signal, settings.sample_rate, top_db=20.0, keep_digital_silence=False)
            features.append(signal_features(speed_perturb(signal, factor),
                                            dataclasses.replace(settings, trim_db=None)))
        by_hand[factor] = recogniser.probabilities(features)
    # the perturbations change what the model says, else the average would prove nothing
    assert np.abs(by_hand[0.9] - by_hand[1.0]).max() > 1e-3 and np.abs(by_hand[1.1] - by_hand[1.0]).max() > 1e-3
    log_mean = np.mean([np.log(p) for p in by_hand.values()], axis=0)
    expected = np.exp(log_mean) / np.exp(log_mean).sum(axis=1, keepdims=True)

    versions = tta.version_probabilities(recogniser, fsdd, recordings, progress=False)
    assert versions.shape == (3, 20, 10)
    for row, factor in enumerate(tta.SPEEDS):
        np.testing.assert_allclose(versions[row], by_hand[factor], rtol=1e-5, atol=1e-7)
    averaged = tta.tta_probabilities(recogniser, fsdd, recordings, progress=False)
    np.testing.assert_allclose(averaged, expected, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(averaged.sum(axis=1), 1.0, rtol=1e-6)


def test_a_version_is_trimmed_once_then_played_at_its_speed(scored):
    recogniser, _, recordings = scored
    versions = tta.perturbed_features(recogniser, recordings[:4], (0.9, 1.0, 1.1))
    for i, recording in enumerate(recordings[:4]):
        signal, _ = audio.load(recording.path, sample_rate=8000)
        trimmed = trim_silence(signal, 8000, top_db=20.0, keep_digital_silence=False)
        assert len(trimmed) < len(signal) - 400   # the fake's 50 ms silences are cut
        np.testing.assert_allclose(versions[1.0][i], signal_features(signal, recogniser.features), atol=1e-4)
        seconds = len(trimmed) / 8000
        # 0.9 plays slower: about 1/0.9 as many frames as the trimmed clean signal
        for factor in (0.9, 1.1):
            expected_frames = seconds / factor / FRAME_SECONDS_HOP
            assert abs(len(versions[factor][i]) - expected_frames) <= 3, (factor, len(versions[factor][i]))
        assert len(versions[0.9][i]) > len(versions[1.0][i]) > len(versions[1.1][i])


@pytest.mark.parametrize("speeds, bad", [((1.0, 0.0), "0.0"), ((-1.1,), "-1.1"), ((0.9, float("nan")), "nan"),
                                         ((1.0, "fast"), "'fast'"), ((True,), "True")])
def test_a_speed_factor_that_is_not_a_positive_number_is_refused_before_any_file_is_read(scored, monkeypatch,
                                                                                        speeds, bad):
    recogniser, fsdd, recordings = scored
    monkeypatch.setattr(audio, "load", lambda *a, **k: pytest.fail("a file was read"))
    with pytest.raises(ValueError, match=rf"every speed factor must be a finite number > 0 .*got {bad} in"):
        tta.tta_probabilities(recogniser, fsdd, recordings, speeds=speeds, progress=False)


def test_no_speeds_at_all_is_refused(scored):
    recogniser, fsdd, recordings = scored
    with pytest.raises(ValueError, match=r"speeds must be a non-empty sequence of speed factors, got \(\)"):
        tta.version_probabilities(recogniser, fsdd, recordings, speeds=(), progress=False)
    with pytest.raises(ValueError, match="speeds must be a non-empty sequence"):
        tta.check_speeds(0.9)


def test_versions_are_pooled_by_their_geometric_mean_and_bad_shapes_refused():
    # the plain mean of the two versions says class 0 (0.405 against 0.225 and 0.37); the
    # geometric mean says class 1 (sqrt(0.15 * 0.3) = 0.212 against 0.089 and 0.186), since the
    # second version all but rules class 0 out
    versions = np.array([[[0.8, 0.15, 0.05]], [[0.01, 0.3, 0.69]]])
    assert versions.mean(axis=0).argmax() == 0
    pooled = tta.combine_versions(versions)
    product = np.sqrt([[0.8 * 0.01, 0.15 * 0.3, 0.05 * 0.69]])
    np.testing.assert_allclose(pooled, product / product.sum(), rtol=1e-6)
    assert pooled.argmax() == 1
    np.testing.assert_array_equal(tta.combine_versions(versions[:1]), versions[0])
    with pytest.raises(ValueError, match=r"expected \(versions, n, labels\) probabilities, got shape \(3, 10\)"):
        tta.combine_versions(np.full((3, 10), 0.1))
