"""minidl.apps.recipes: each recipe is the one before it plus one ingredient."""
from __future__ import annotations

import dataclasses

import pytest

from minidl.apps.recipes import (CHAIN, ENSEMBLES, FEATURE_LEVERS, LEVER_CHANGES, LEVERS, MODEL_LEVERS, RECIPES,
                                 RECOMMENDED, members_of, recipe)


def _differences(before, after):
    (f0, t0), (f1, t1) = before, after
    # asdict, not to_dict: to_dict leaves out the default kind, which would hide a change of it
    changed = {k for k in dataclasses.asdict(f0) if dataclasses.asdict(f0)[k] != dataclasses.asdict(f1)[k]}
    a0, a1 = t0["augmentation"].to_dict(), t1["augmentation"].to_dict()
    changed |= {f"augmentation.{k}" for k in a0 if a0[k] != a1[k]}
    changed |= {k for k in {*t0, *t1} if k != "augmentation" and t0.get(k) != t1.get(k)}
    return changed


def test_each_step_adds_one_ingredient():
    names = list(CHAIN)
    assert names == ["baseline", "trim", "vtlp", "draws", "voices", "specaug"]
    assert set(RECIPES) == {*CHAIN, "voices_cmvn", *LEVERS}
    assert _differences(RECIPES["voices"], RECIPES["voices_cmvn"]) == {"normalization"}
    steps = {name: _differences(RECIPES[a], RECIPES[name]) for a, name in zip(names, names[1:])}
    assert steps == {"trim": {"trim_db"}, "vtlp": {"augmentation.vtlp"},
                     "draws": {"augmentation.copies", "augmentation.clean_fraction", "augmentation.epoch_draws",
                               "epochs"},
                     "voices": {"synthetic_voices"},
                     "specaug": {"augmentation.spec_augment"}}


def test_each_lever_is_trim_with_the_fields_it_names_changed():
    expected = {"trim_speed": {"augmentation.snr_db"},
                "trim_noise": {"augmentation.speed"},
                "trim_ko": {"augmentation.copies", "augmentation.snr_db", "augmentation.speed_factors"},
                "trim_pitch": {"augmentation.speed", "augmentation.pitch_semitones"},
                "trim_gain": {"augmentation.gain_db"},
                "trim_reverb": {"augmentation.reverb_rt60"},
                "trim_colour": {"augmentation.noise_colours"},
                "trim_band": {"augmentation.band_hz"},
                "trim_channel": {"augmentation.band_hz", "augmentation.gain_db", "augmentation.reverb_rt60"},
                "trim_gap": {"model"},
                "trim_logmel": {"kind"}}
    assert set(LEVERS) == set(expected) and not set(LEVERS) & set(CHAIN)
    assert {name: _differences(RECIPES["trim"], RECIPES[name]) for name in LEVERS} == expected
    ko = RECIPES["trim_ko"][1]["augmentation"]
    assert (ko.copies, ko.speed_factors, ko.snr_db) == (2, (0.9, 1.1), None)


def test_trim_gap_is_trim_trained_by_the_gapcnn():
    assert set(MODEL_LEVERS) == {"trim_gap"} and set(MODEL_LEVERS) <= set(LEVERS)
    gap, trim = recipe("trim_gap", seed=2), recipe("trim", seed=2)
    assert gap[1] == trim[1] and gap[1].trim_db == 30.0
    assert (gap[0].model, trim[0].model) == ("gapcnn", "crnn")
    assert dataclasses.replace(gap[0], model="crnn") == trim[0]
    assert gap[0].epochs == 15 and gap[0].augment


def test_the_baseline_is_the_recipe_before_issue_13():
    features, train = RECIPES["baseline"]
    assert features.trim_db is None and features.normalization == "global"
    assert train["model"] == "crnn" and train["epochs"] == 15 and train["augment"]
    a = train["augmentation"]
    assert (a.copies, a.epoch_draws, a.vtlp, a.spec_augment, a.speed, a.snr_db) == \
        (1, False, None, False, (0.9, 1.1), (0.0, 30.0))


def test_recipe_applies_overrides_and_refuses_unknown_names():
    settings, features = recipe("voices", split="speaker", held_out="lucas", seed=3)
    assert (settings.split, settings.held_out, settings.seed) == ("speaker", "lucas", 3)
    assert dataclasses.asdict(settings)["augmentation"] == RECIPES["voices"][1]["augmentation"].to_dict()
    with pytest.raises(ValueError, match="unknown recipe 'fast'; choose one of baseline"):
        recipe("fast")


def test_the_recommended_recipe_is_an_ensemble_of_recipes_that_differ():
    assert RECOMMENDED in ENSEMBLES and members_of(RECOMMENDED) == ("voices", "voices_cmvn", "trim")
    assert all(member in RECIPES for members in ENSEMBLES.values() for member in members)
    assert members_of("trim") == ("trim",)
    with pytest.raises(ValueError, match="unknown recipe 'fast'; choose one of .*ensemble"):
        members_of("fast")


def test_make_demo_trains_the_recommended_recipe_on_the_official_split():
    import pathlib

    from minidl.apps import cli
    root = pathlib.Path(__file__).resolve().parents[3]
    demo = next(line for line in (root / "Makefile").read_text().splitlines() if "runs/demo" in line)
    assert "minidl-digits train --split official" in demo and "--recipe" not in demo
    assert cli.parser().parse_args(["train"]).recipe == RECOMMENDED
    assert "minidl-digits train --split official --out runs/demo" in (root / "README.md").read_text()


def test_trim_logmel_is_trim_with_log_mels_in_place_of_mfccs():
    assert _differences(RECIPES["trim"], RECIPES["trim_logmel"]) == {"kind"}
    features, train = RECIPES["trim_logmel"]
    assert (features.kind, features.trim_db, features.n_features) == ("logmel", 30.0, 52)
    assert train["augmentation"] == RECIPES["trim"][1]["augmentation"]
    # a lever of the features, not of the augmentation
    assert "trim_logmel" in LEVERS and "trim_logmel" not in LEVER_CHANGES
    assert set(FEATURE_LEVERS) == {"trim_logmel"}
    settings, features = recipe("trim_logmel", split="speaker", held_out="george", seed=2)
    assert (features.kind, settings.held_out, settings.seed) == ("logmel", "george", 2)
