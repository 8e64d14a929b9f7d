"""Test-time augmentation: one digit model hears each recording at a few speeds, and averages.

A model that never heard a speaker may be unsure of one take of a word yet sure of the same
take played a little faster or slower. Test-time augmentation scores perturbed copies of each
test input with the same model and pools the answers: Krizhevsky et al. (2012, "ImageNet
classification with deep convolutional neural networks") averaged a network's predictions over
ten crops and flips of each test image. For speech the perturbation that costs nothing to define
is Ko et al.'s (2015, "Audio augmentation for speech recognition") speed factors 0.9 and 1.1,
which the recipes already train on (``audio.augment.speed_perturb``):

    signal ─trim─► ─speed 0.9─► features ─► model ─► log p(0.9) ─┐
    signal ─trim─► (clean)    ─► features ─► model ─► log p(1.0) ─┼─ mean ─► softmax ─► digit
    signal ─trim─► ─speed 1.1─► features ─► model ─► log p(1.1) ─┘

Silence is trimmed before the speed changes, as ``augmentation.augmented_features`` does in
training, so a perturbed version is what the model saw among its augmented copies. The versions
are pooled by ``ensemble.COMBINE``, the mean of log-probabilities (Ensemble.combine): a version
sure that a digit is wrong vetoes it, as a member of an ensemble does. The clean version comes
from the feature cache (``Recogniser.recording_probabilities``), so ``speeds=(1.0,)`` is the
plain model, bit for bit. ``benchmarks/digits.py --tta RECIPE`` measures what it buys on unheard
speakers.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
from tqdm.auto import tqdm

import audio
from audio import augment as audio_augment
from audio.silence import trim_silence
from minidl.apps.ensemble import Ensemble
from minidl.apps.features import signal_features

#: the clean signal and Ko et al.'s (2015) two speed factors
SPEEDS = (1.0, 0.9, 1.1)


def check_speeds(speeds) -> tuple[float, ...]:
    """``speeds`` as a tuple of floats, or a ValueError naming the first bad one.

    Raises:
        ValueError: not a non-empty sequence of finite numbers > 0.
    """
    if isinstance(speeds, (str, bytes)) or not hasattr(speeds, "__len__") or len(speeds) == 0:
        raise ValueError(f"tta: speeds must be a non-empty sequence of speed factors, got {speeds!r}")
    for factor in speeds:
        if (isinstance(factor, bool) or not isinstance(factor, (int, float, np.integer, np.floating))
                or not math.isfinite(factor) or factor <= 0):
            raise ValueError(f"tta: every speed factor must be a finite number > 0 (1.0 is the clean "
                             f"signal, 1.1 is 10% faster), got {factor!r} in {tuple(speeds)!r}")
    return tuple(float(factor) for factor in speeds)


def perturbed_features(recogniser, recordings: list, speeds: tuple[float, ...],
                       progress: bool = False) -> dict[float, list[np.ndarray]]:
    """Each recording's features at each speed factor: {factor: [(frames, n_features), ...]}.

    Each file is read once (at the model's sample rate), trimmed by the model's trim_db, then
    played at every factor (``audio.augment.speed_perturb``) and turned into features without a
    second trim. A factor of 1.0 gives the trimmed signal's own features (computed here, not
    read from the cache).

    Args:
        recogniser: a ``digits.Recogniser`` (its ``features`` settings are used).
        recordings: n recordings with a ``.path``.
        speeds: the factors (check_speeds' rules).
    """
    speeds = check_speeds(speeds)
    settings = recogniser.features
    untrimmed = dataclasses.replace(settings, trim_db=None)   # trimmed once, before the speed
    versions: dict[float, list[np.ndarray]] = {factor: [] for factor in speeds}
    for recording in tqdm(recordings, desc="test-time versions", unit="file", disable=not progress):
        signal, _ = audio.load(recording.path, sample_rate=settings.sample_rate)
        if settings.trim_db is not None:
            signal = trim_silence(signal, settings.sample_rate, top_db=settings.trim_db, keep_digital_silence=False)
        for factor in versions:
            versions[factor].append(signal_features(audio_augment.speed_perturb(signal, factor), untrimmed))
    return versions


def version_probabilities(recogniser, fsdd, recordings: list, speeds=SPEEDS, progress: bool = True) -> np.ndarray:
    """The model's probabilities for every version of every recording: (len(speeds), n, labels).

    Row k is speed factor speeds[k]. A factor of exactly 1.0 is the clean recording as the model
    scores it without augmentation (``recogniser.recording_probabilities``, MFCCs from the
    feature cache); every other factor is perturbed_features'. Each version is one predict call
    over all n recordings, batched as the clean version is (padded batches of similar lengths),
    each version apart from the others, so no version's batches depend on which other versions
    were asked for.

    Raises:
        ValueError: a bad speed factor (check_speeds), before any file is read.
    """
    speeds = check_speeds(speeds)
    others = tuple(factor for factor in speeds if factor != 1.0)
    perturbed = perturbed_features(recogniser, recordings, others, progress) if others else {}
    clean = recogniser.recording_probabilities(fsdd, recordings, progress) if 1.0 in speeds else None
    return np.stack([clean if factor == 1.0 else recogniser.probabilities(perturbed[factor])
                     for factor in speeds])


def combine_versions(probabilities: np.ndarray) -> np.ndarray:
    """(versions, n, labels) -> (n, labels): softmax of the mean log-probability over versions
    (``Ensemble.combine``); a single version is returned as it is (its own mean), not renormalised.

    Raises:
        ValueError: not a 3-D array with at least one version.
    """
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 3 or len(probabilities) == 0:
        raise ValueError(f"tta: expected (versions, n, labels) probabilities, got shape {probabilities.shape}")
    if len(probabilities) == 1:
        return probabilities[0]
    return Ensemble.combine(list(probabilities))


def tta_probabilities(recogniser, fsdd, recordings: list, speeds=SPEEDS, progress: bool = True) -> np.ndarray:
    """(n, labels) for n recordings of ``fsdd``: each the mean log-probability, renormalised, of
    its versions at ``speeds`` (default: clean, 0.9 and 1.1). ``speeds=(1.0,)`` equals
    ``recogniser.recording_probabilities`` exactly. Errors as version_probabilities."""
    return combine_versions(version_probabilities(recogniser, fsdd, recordings, speeds, progress))


__all__ = ["SPEEDS", "check_speeds", "combine_versions", "perturbed_features", "tta_probabilities",
           "version_probabilities"]
