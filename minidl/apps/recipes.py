"""Recipes: features + augmentation + model + training schedule, by name.

Each recipe adds one ingredient to the one before it, so ``benchmarks/digits.py --split speaker
--recipe ...`` measures what each ingredient buys on speakers the model has never heard (the
README's ablation table). ``RECOMMENDED`` (chosen on seed 0, before the table's seeds) is what
``minidl-digits train`` and ``make demo`` train: on seeds 1-3 it lifts the held-out-speaker
mean from 83.0% to 84.6% and the worst speaker from 74.1% to 78.5%, and it scores 100% on the
official split after 83 s of training on 2 cores (benchmarks/results/digits.json, README).

    baseline   the CRNN with the recipe before issue 13: global normalisation, the clean set
               plus one copy of each recording with speed perturbation and noise, 15 epochs
    trim       + leading and trailing silence cut before the features (in training and at
               prediction)
    vtlp       + a VTLP warp of the mel filterbank in that copy
    draws      + 4 copies, each epoch hearing one version of every recording (a quarter of
               them clean), 30 epochs
    voices     + the ten digits in 300 synthetic voices (espeak-ng and flite, audio.synthetic)
               on the training side, augmented like the rest; without the engines installed
               (``make voices``) it trains as "draws", with a warning
    specaug    + SpecAugment masks on the copies' log mels
"""
from __future__ import annotations

import dataclasses

from minidl.apps.augmentation import SPEED_AND_NOISE_COPY
from minidl.apps.digits import TrainSettings
from minidl.apps.features import FeatureSettings



#: synthetic voices of the "voices" step (audio.synthetic; 10 recordings each)
SYNTHETIC_VOICES = 300


def _steps() -> dict[str, tuple[FeatureSettings, dict]]:
    steps = {}
    features, train = FeatureSettings(), dict(model="crnn", epochs=15, augment=True, augmentation=SPEED_AND_NOISE_COPY)
    steps["baseline"] = (features, dict(train))
    features = dataclasses.replace(features, trim_db=30.0)
    steps["trim"] = (features, dict(train))
    train["augmentation"] = dataclasses.replace(train["augmentation"], vtlp=(0.9, 1.1))
    steps["vtlp"] = (features, dict(train))
    train.update(epochs=30, augmentation=dataclasses.replace(train["augmentation"], copies=4, clean_fraction=0.25,
                                                             epoch_draws=True))
    steps["draws"] = (features, dict(train))
    train.update(synthetic_voices=SYNTHETIC_VOICES)
    steps["voices"] = (features, dict(train))
    train["augmentation"] = dataclasses.replace(train["augmentation"], spec_augment=True)
    steps["specaug"] = (features, dict(train))
    return steps


RECIPES = _steps()
RECOMMENDED = "draws"


def recipe(name: str, **overrides) -> tuple[TrainSettings, FeatureSettings]:
    """The TrainSettings and FeatureSettings of a named recipe; ``overrides`` (split,
    held_out, seed, epochs, ...) replace TrainSettings fields.

    Raises:
        ValueError: an unknown recipe name (the message lists the known ones).
    """
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    features, train = RECIPES[name]
    return TrainSettings(**{**train, **overrides}), features


__all__ = ["RECIPES", "RECOMMENDED", "recipe"]
