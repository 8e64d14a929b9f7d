"""Recipes: features + augmentation + model + training schedule, by name.

Each recipe of the chain adds one ingredient to the one before it, so ``benchmarks/digits.py
--split speaker --recipe ...`` measures what each ingredient buys on speakers the model has
never heard (the README's ablation table). An ensemble (``ENSEMBLES``) names recipes whose
models are trained one after the other and heard together (``minidl.apps.ensemble``).
``RECOMMENDED`` is what ``minidl-digits train`` and ``make demo`` train: the ensemble of
"voices", "voices_cmvn" and "trim", chosen on seeds 1-3 (92.1% mean, worst george 88.9%) and
reported on the fresh seeds 4, 5 and 6: 92.6% mean (seed means 91.1%, 93.3% and 93.4%), worst
george 88.3%, every speaker held out in turn; 100.0% on the official split after 400 s of training on
2 threads (benchmarks/results/digits.json, README). Without espeak-ng and flite its first two
members train as "draws" and "draws" with CMVN, with a warning.

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

    voices_cmvn  "voices" with per-utterance CMVN instead of global standardisation: not a
               step of the chain, but a member of the ensemble

    ensemble   voices + voices_cmvn + trim, their log-probabilities averaged: three models
               that differ in normalisation, voices and schedule, so they err on different
               words of a new voice

Levers (``LEVERS``, issue 13): not steps of the chain, but "trim" with one thing changed, to
measure what each buys on unheard speakers. Most change one thing of its augmented copy
(``LEVER_CHANGES``), to measure each kind of augmentation:

    trim_speed   no noise: speed perturbation alone, a factor drawn in 0.9-1.1 (Ko et al., 2015)
    trim_noise   no speed perturbation: white noise at 0-30 dB SNR alone (multi-condition
                 training, as Aurora-2: Hirsch & Pearce, 2000)
    trim_ko      Ko et al.'s (2015) form: the recording and two copies at the fixed speed
                 factors 0.9 and 1.1, every epoch, no noise
    trim_pitch   a pitch shift drawn in ±2 semitones that keeps the duration (phase vocoder,
                 then resampling) in place of the speed perturbation, noise kept: a new
                 voice's pitch without its tempo (pitch-shift augmentation, as Schlüter &
                 Grill, 2015, and Salamon & Bello, 2017)
    trim_gain    + a random gain of -12 to +6 dB in the copy: another speaker's loudness or
                 microphone (a level change; the only one the log mels see unnormalised is
                 the energy)
    trim_reverb  + reverberation in the copy: a synthetic room (a direct path and a Gaussian
                 tail decaying 60 dB in an RT60 drawn in 0.1-0.6 s, Schroeder's statistical
                 model), as room simulation in Ko et al., 2017
    trim_colour  the copy's noise white, pink (1/f) or brown (1/f²), one drawn per copy, at
                 trim's 0-30 dB SNR: rooms hum and rumble rather than hiss (noise types of
                 multi-condition training, as the NOISEX-92 set)
    trim_band    + a band-pass channel in the copy: lower edge drawn in 100-400 Hz, upper in
                 2.5-3.8 kHz, Butterworth order 2-4 (the telephone band, 300-3400 Hz, and a
                 cheap microphone's roll-off)
    trim_channel the three channel levers together (trim_reverb's room, then trim_band's
                 band-pass, then trim_gain's level): a new room, microphone and recorder at once

One lever changes the model rather than the augmentation (``MODEL_LEVERS``):

    trim_gap     the GAP-CNN (``digits.build_gapcnn``: two Conv1D, then the maximum of each
                 filter over the clip's real frames) in place of the CRNN: a model that cannot
                 care where in the clip the word sits (time-shift invariance, as the TDNN of
                 Waibel et al., 1989); the same features, copy and 15 epochs

And one changes the features (``FEATURE_LEVERS``), its augmentation and everything else kept:

    trim_logmel  the 26 log mel-filterbank energies (+ deltas: 52 per frame) in place of the
                 13 MFCCs (+ deltas: 26): the MFCC chain stopped before its DCT
                 (FeatureSettings.kind = "logmel"); filterbank inputs beat MFCCs for neural
                 acoustic models in Mohamed, Hinton & Penn, 2012
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
    voices = (features, dict(train))
    train["augmentation"] = dataclasses.replace(train["augmentation"], spec_augment=True)
    steps["specaug"] = (features, dict(train))
    # not a step of the chain: "voices" with each utterance normalised by its own statistics,
    # the second member of a two-model ensemble (benchmarks/digits.py --ensemble)
    steps["voices_cmvn"] = (dataclasses.replace(voices[0], normalization="utterance"), voices[1])
    trim = steps["trim"]
    for name, change in LEVER_CHANGES.items():
        steps[name] = (trim[0], {**trim[1], "augmentation": dataclasses.replace(trim[1]["augmentation"], **change)})
    for name, change in MODEL_LEVERS.items():
        steps[name] = (trim[0], {**trim[1], **change})
    for name, change in FEATURE_LEVERS.items():
        steps[name] = (dataclasses.replace(trim[0], **change), dict(trim[1]))
    return steps


#: what each lever recipe changes in the augmentation of "trim" (the module docstring says why)
LEVER_CHANGES = {
    "trim_speed": dict(snr_db=None),
    "trim_noise": dict(speed=None),
    "trim_ko": dict(copies=2, snr_db=None, speed_factors=(0.9, 1.1)),
    "trim_pitch": dict(speed=None, pitch_semitones=(-2.0, 2.0)),
    "trim_gain": dict(gain_db=(-12.0, 6.0)),
    "trim_reverb": dict(reverb_rt60=(0.1, 0.6)),
    "trim_colour": dict(noise_colours=("white", "pink", "brown")),
    "trim_band": dict(band_hz=(100.0, 400.0, 2500.0, 3800.0)),
    "trim_channel": dict(band_hz=(100.0, 400.0, 2500.0, 3800.0), gain_db=(-12.0, 6.0), reverb_rt60=(0.1, 0.6)),
}
#: what each lever recipe changes in the TrainSettings of "trim" other than its augmentation
MODEL_LEVERS = {
    "trim_gap": dict(model="gapcnn"),
}
#: what each feature lever changes in the FeatureSettings of "trim" (its augmentation and the rest kept)
FEATURE_LEVERS = {
    "trim_logmel": dict(kind="logmel"),
}
#: the lever recipes, each "trim" with one thing changed: its augmented copy, its model or its features
LEVERS = (*LEVER_CHANGES, *MODEL_LEVERS, *FEATURE_LEVERS)
RECIPES = _steps()
#: the ablation's chain, each the one before plus one ingredient
CHAIN = ("baseline", "trim", "vtlp", "draws", "voices", "specaug")
#: recipes trained one after the other and heard together (minidl.apps.ensemble.train_ensemble)
ENSEMBLES = {"ensemble": ("voices", "voices_cmvn", "trim")}
RECOMMENDED = "ensemble"


def members_of(name: str) -> tuple[str, ...]:
    """The recipes an ensemble name trains, or (name,) for a single recipe.

    Raises:
        ValueError: a name that is neither (the message lists the known ones).
    """
    if name in ENSEMBLES:
        return ENSEMBLES[name]
    if name in RECIPES:
        return (name,)
    raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join((*RECIPES, *ENSEMBLES))}")


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


__all__ = ["CHAIN", "ENSEMBLES", "FEATURE_LEVERS", "LEVERS", "LEVER_CHANGES", "MODEL_LEVERS", "RECIPES", "RECOMMENDED",
           "members_of", "recipe"]
