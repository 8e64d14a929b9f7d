"""minidl.apps.augmentation: augmented versions of a recording, their cache, and epoch draws."""
from __future__ import annotations

import json

import numpy as np
import pytest

import audio
from minidl.apps import augmentation, digits
from minidl.apps.augmentation import SPEED_AND_NOISE_COPY, AugmentSettings, EpochDraws, augmented_copies, augmented_features
from minidl.apps.features import FeatureSettings, signal_features
from tests.minidl.apps.fake_fsdd import tone

OFF = AugmentSettings(speed=None, snr_db=None, vtlp=None, spec_augment=False)


@pytest.mark.parametrize("features", [FeatureSettings(), FeatureSettings(trim_db=30.0, normalization="utterance")])
def test_with_every_draw_off_the_chain_is_signal_features(features):
    signal = tone(3, 0)
    got = augmented_features(signal, features, OFF, np.random.default_rng(0))
    np.testing.assert_allclose(got, signal_features(signal, features), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("change", [dict(speed=(1.1, 1.1)), dict(snr_db=(10.0, 10.0)), dict(vtlp=(0.9, 0.9)),
                                    dict(spec_augment=True), dict(pitch_semitones=(2.0, 2.0)),
                                    dict(reverb_rt60=(0.5, 0.5)), dict(snr_db=(10.0, 10.0), noise_colours=("brown",)),
                                    dict(band_hz=(400.0, 400.0, 1000.0, 1000.0))])
def test_each_draw_changes_the_features_and_a_seed_repeats_them(change):
    signal, features = tone(5, 1), FeatureSettings()
    settings = AugmentSettings(**{**OFF.to_dict(), **change})
    first = augmented_features(signal, features, settings, np.random.default_rng(7))
    again = augmented_features(signal, features, settings, np.random.default_rng(7))
    np.testing.assert_array_equal(first, again)
    plain = signal_features(signal, features)
    if first.shape == plain.shape:
        assert np.abs(first - plain).max() > 0.1
    else:
        assert change.get("speed")            # 10% faster: 10% fewer frames
        assert abs(len(first) - len(plain) / 1.1) <= 2


@pytest.mark.parametrize("bad", [dict(copies=0), dict(copies=True), dict(clean_fraction=1.5),
                                 dict(speed=(1.2, 1.1)), dict(snr_db=(0, float("nan"))), dict(vtlp=0.9),
                                 dict(speed_factors=()), dict(speed_factors=0.9), dict(speed_factors=(0.9, 3.0)),
                                 dict(speed_factors=(True,)), dict(pitch_semitones=(2, -2)),
                                 dict(pitch_semitones=(0, 13)), dict(pitch_semitones=2), dict(gain_db=(-50, 0)),
                                 dict(gain_db=(6, float("inf"))), dict(gain_db=(3, -3)), dict(reverb_rt60=(0, 0.5)),
                                 dict(reverb_rt60=(0.1, 5.0)), dict(reverb_rt60=("a", "b")), dict(noise_colours=()),
                                 dict(noise_colours=("pink", "blue")), dict(noise_colours="pink"),
                                 dict(noise_colours=("pink",), snr_db=None), dict(band_hz=(300, 3400)),
                                 dict(band_hz=(0, 300, 3000, 3400)), dict(band_hz=(300, 200, 3000, 3400)),
                                 dict(band_hz=(300, 3500, 3000, 3400)), dict(band_hz=(300, 400, 3000, float("nan")))])
def test_settings_refuse_what_cannot_be_drawn(bad):
    with pytest.raises(ValueError, match=f"AugmentSettings: {next(iter(bad))}"):
        AugmentSettings(**bad)


# (settings, features, seed 5, tone(3, 0)) -> shape, sum, sum of squares, sum weighted by
# index % 7, and the generator's next integer: recorded before the levers existed, so a lever
# that draws a random number while off (or changes the chain) fails here
BEFORE_LEVERS = [
    (SPEED_AND_NOISE_COPY, True, (30, 26), -1865.297729856451, 148845.96485774528, -5407.224214776768,
     2590317237614093231),
    (SPEED_AND_NOISE_COPY, False, (38, 26), -2124.438895315303, 155344.628483736, -6552.693000411426,
     2346268929307154639),
    (AugmentSettings(), True, (30, 26), -1855.1040630806237, 150237.04848377022, -5373.182207072154,
     582046924629931952),
    (AugmentSettings(), False, (38, 26), -2124.438895315303, 155344.628483736, -6552.693000411426,
     1168981244600846560),
    (AugmentSettings(spec_augment=True, speed=(0.95, 1.05)), True, (31, 26), -1608.6771484038327,
     162205.00885401006, -4597.505932691973, 2973986408964027461),
    (AugmentSettings(spec_augment=True, speed=(0.95, 1.05)), False, (39, 26), -1906.985285407781,
     147837.43422676038, -5681.761306867484, 1021152503653132095),
]


@pytest.mark.parametrize("settings, trim, shape, total, squares, weighted, next_draw", BEFORE_LEVERS)
def test_with_the_levers_off_the_copies_are_those_of_before(settings, trim, shape, total, squares, weighted,
                                                            next_draw):
    rng = np.random.default_rng(5)
    x = augmented_features(tone(3, 0), FeatureSettings(trim_db=30.0 if trim else None), settings, rng, 2)
    x = x.astype(np.float64)
    assert x.shape == shape
    weights = np.arange(x.size).reshape(x.shape) % 7
    np.testing.assert_allclose([x.sum(), (x * x).sum(), (x * weights).sum()], [total, squares, weighted], rtol=1e-6)
    assert int(rng.integers(2 ** 62)) == next_draw          # the same number of draws, exactly


def test_levers_that_are_off_leave_the_cache_key_of_before():
    settings = AugmentSettings(copies=2)
    key = augmentation._cache_key(settings)
    assert set(key) == set(settings.to_dict()) - set(augmentation._LEVER_DEFAULTS)
    assert "speed_factors" in augmentation._cache_key(AugmentSettings(speed_factors=(1.0,)))


def test_speed_factors_give_copy_k_the_factor_k():
    signal, features = tone(5, 1), FeatureSettings()
    settings = AugmentSettings(**{**OFF.to_dict(), "speed_factors": (0.9, 1.0, 1.1), "speed": (0.5, 0.5)})
    for k in range(4):
        factor = (0.9, 1.0, 1.1)[k % 3]
        rng = np.random.default_rng(k)
        got = augmented_features(signal, features, settings, rng, k)
        expected = signal_features(audio.augment.speed_perturb(signal, factor), features)
        np.testing.assert_array_equal(got, expected)        # the factor of copy k, not a drawn one
        assert rng.integers(2 ** 62) == np.random.default_rng(k).integers(2 ** 62)   # nothing drawn


def test_a_pitch_shift_keeps_the_duration_and_is_the_drawn_one():
    signal, features = tone(5, 1), FeatureSettings()
    settings = AugmentSettings(**{**OFF.to_dict(), "pitch_semitones": (-2.0, 2.0)})
    drawn = round(float(np.random.default_rng(3).uniform(-2.0, 2.0)), 1)
    got = augmented_features(signal, features, settings, np.random.default_rng(3))
    np.testing.assert_array_equal(got, signal_features(audio.augment.pitch_shift(signal, drawn), features))
    assert drawn != 0 and got.shape == signal_features(signal, features).shape


def test_a_gain_is_the_drawn_one_in_the_chain():
    signal, features = tone(5, 1), FeatureSettings(normalization="none")
    settings = AugmentSettings(**{**OFF.to_dict(), "gain_db": (-12.0, 6.0)})
    drawn = float(np.random.default_rng(4).uniform(-12.0, 6.0))
    got = augmented_features(signal, features, settings, np.random.default_rng(4))
    expected = signal_features(signal * np.float32(10 ** (drawn / 20)), features)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    assert np.abs(got - signal_features(signal, features)).max() > 0.5     # a level the features see


def test_each_copy_draws_a_colour_of_noise():
    signal, features = tone(5, 1), FeatureSettings()
    colours = ("white", "brown")
    settings = AugmentSettings(**{**OFF.to_dict(), "snr_db": (5.0, 5.0), "noise_colours": colours})
    drawn = set()
    for seed in range(8):
        got = augmented_features(signal, features, settings, np.random.default_rng(seed))
        rng = np.random.default_rng(seed)                  # the chain's draws, in its order
        snr_db, colour = float(rng.uniform(5.0, 5.0)), colours[int(rng.integers(2))]
        noise = audio.augment.coloured_noise(len(signal), colour, rng)
        noisy = audio.augment.add_noise(signal, snr_db, noise=noise, rng=rng)
        np.testing.assert_array_equal(got, signal_features(noisy, features))
        drawn.add(colour)
    assert drawn == set(colours)                           # copies of one file differ in colour


def test_settings_round_trip_through_json_values():
    settings = AugmentSettings(copies=2, vtlp=(0.95, 1.05), speed_factors=(0.9, 1.1), pitch_semitones=(-1, 2),
                              gain_db=(-3, 3), reverb_rt60=(0.2, 0.4), noise_colours=("pink", "white"),
                              band_hz=(200, 300, 3000, 3500))
    assert AugmentSettings.from_dict(settings.to_dict()) == settings
    assert AugmentSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    with pytest.raises(ValueError, match="unknown"):
        AugmentSettings.from_dict({"pitch": 2})


def _tagged(n, value):
    """n one-frame 'utterances' whose single value tells which version and recording they are."""
    return [np.full((1 + i % 3, 2), value + i, dtype=np.float32) for i in range(n)]


@pytest.mark.parametrize("clean_fraction", [0.0, 0.5, 1.0])
def test_epoch_draws_hear_each_recording_once_in_one_of_its_versions(clean_fraction):
    n = 50
    clean, copies = _tagged(n, 0), [_tagged(n, 1000), _tagged(n, 2000)]
    draws = EpochDraws(clean, copies, np.arange(n), batch_size=8, clean_fraction=clean_fraction, seed=1)
    seen_versions = []
    for _ in range(3):
        heard = {}
        for x, y in (draws[i] for i in range(len(draws))):
            for row, label in zip(x, y):
                heard[int(label)] = int(row[0, 0])
        assert sorted(heard) == list(range(n))                     # every recording, once
        versions = {label: value // 1000 for label, value in heard.items()}
        assert all(value % 1000 == label for label, value in heard.items())   # its own features
        seen_versions.append(versions)
        draws.on_epoch_end()
    clean_share = np.mean([v == 0 for versions in seen_versions for v in versions.values()])
    if clean_fraction in (0.0, 1.0):
        assert clean_share == clean_fraction
    else:
        assert 0.3 < clean_share < 0.7
        assert seen_versions[0] != seen_versions[1]                # drawn anew each epoch


def test_epoch_draws_cut_or_pad_to_a_fixed_length_for_the_cnn():
    draws = EpochDraws(_tagged(10, 0), [_tagged(10, 1000)], np.arange(10), batch_size=4, frames=2)
    assert all(draws[i][0].shape[1:] == (2, 2) for i in range(len(draws)))
    with pytest.raises(ValueError, match="EpochDraws"):
        EpochDraws(_tagged(10, 0), [_tagged(9, 0)], np.arange(10))


def test_copies_are_computed_once_per_seed_and_cached(fake_data, monkeypatch):
    fsdd = audio.fsdd.FSDD(fake_data)
    train, _ = fsdd.split("official")
    settings, features = AugmentSettings(copies=2), FeatureSettings()
    calls = []
    real = augmentation.augmented_features
    monkeypatch.setattr(augmentation, "augmented_features", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = augmented_copies(fsdd, train, features, settings, seed=0, progress=False)
    computed = len(calls)
    assert computed == 2 * len(fsdd.recordings())                 # every recording, both copies
    again = augmented_copies(fsdd, train, features, settings, seed=0, progress=False)
    assert len(calls) == computed                                  # from the cache
    assert len(first) == 2 and len(first[0]) == len(train)
    assert all(np.array_equal(a, b) for a, b in zip(first[1], again[1]))
    assert not np.array_equal(first[0][0], first[1][0])           # two different draws
    other = augmented_copies(fsdd, train, features, settings, seed=1, progress=False)
    assert len(calls) > computed and not np.array_equal(other[0][0], first[0][0])


def test_training_with_augmentation_writes_its_settings(fake_data, tmp_path):
    settings = digits.TrainSettings(model="crnn", epochs=2, augment=True,
                                    augmentation=AugmentSettings(copies=1))
    metrics = digits.train(settings, tmp_path, fsdd=audio.fsdd.FSDD(fake_data), verbose=0, progress=False)
    assert metrics["settings"]["augment"] is True
    assert metrics["settings"]["augmentation"]["copies"] == 1
    assert 0.0 <= metrics["test_accuracy"] <= 1.0


def test_augment_alone_still_means_one_speed_and_noise_copy():
    # what --augment meant before recipes, so the stories and results recorded with it still hold
    settings = digits.TrainSettings(augment=True).augmentation
    assert settings == augmentation.SPEED_AND_NOISE_COPY
    assert (settings.copies, settings.epoch_draws, settings.vtlp, settings.speed, settings.snr_db) == \
        (1, False, None, (0.9, 1.1), (0.0, 30.0))


def test_a_band_above_the_nyquist_frequency_is_refused_by_name():
    settings = AugmentSettings(**{**OFF.to_dict(), "band_hz": (300.0, 300.0, 3500.0, 4000.0)})
    with pytest.raises(ValueError, match="band_hz's upper edge 4000 Hz must be below the Nyquist frequency 4000"):
        augmented_features(tone(3, 0), FeatureSettings(), settings, np.random.default_rng(0))


LOG_MELS = FeatureSettings(kind="logmel", delta_order=0, normalization="none")


@pytest.mark.parametrize("features", [LOG_MELS, FeatureSettings(kind="logmel", trim_db=30.0)])
def test_with_every_draw_off_the_log_mel_chain_is_signal_features(features):
    signal = tone(3, 0)
    got = augmented_features(signal, features, OFF, np.random.default_rng(0))
    assert got.shape[1] == features.n_features
    np.testing.assert_allclose(got, signal_features(signal, features), rtol=1e-5, atol=1e-4)


def test_spec_augment_masks_the_log_mels_themselves():
    signal = tone(4, 0)
    plain = signal_features(signal, LOG_MELS)
    settings = AugmentSettings(**{**OFF.to_dict(), "spec_augment": True})
    for seed in range(5):
        got = augmented_features(signal, LOG_MELS, settings, np.random.default_rng(seed))
        masked = ~np.isclose(got, plain, rtol=1e-5, atol=1e-4)
        # what changed is whole frames and whole bands, each set to the utterance's mean log mel
        whole = masked.all(axis=1)[:, None] | masked.all(axis=0)[None, :]
        np.testing.assert_array_equal(masked, whole)
        np.testing.assert_allclose(got[masked], plain.mean(), rtol=1e-4)
        if masked.all(axis=0).any():
            break
    else:
        pytest.fail("five seeds drew no band mask")


def test_log_mel_copies_are_cached_apart_from_the_mfccs(fake_data, monkeypatch):
    fsdd = audio.fsdd.FSDD(fake_data)
    train, _ = fsdd.split("official")
    settings = AugmentSettings(copies=1)
    mfccs = FeatureSettings(trim_db=30.0)
    augmented_copies(fsdd, train, mfccs, settings, seed=3, progress=False)
    calls = []
    real = augmentation.augmented_features
    monkeypatch.setattr(augmentation, "augmented_features", lambda *a, **k: calls.append(1) or real(*a, **k))
    logs = augmented_copies(fsdd, train, FeatureSettings(trim_db=30.0, kind="logmel"), settings, seed=3,
                            progress=False)
    assert len(calls) == len(fsdd.recordings())                  # not the MFCC copies' entry
    assert logs[0][0].shape[1] == 52
    again = augmented_copies(fsdd, train, mfccs, settings, seed=3, progress=False)
    assert len(calls) == len(fsdd.recordings()) and again[0][0].shape[1] == 26   # theirs is still theirs
