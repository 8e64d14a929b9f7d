"""The data a digit recogniser trains on: FSDD's features, augmented copies, synthetic voices.

    load_data(settings, features) ─► (train features, labels, test features, labels, test files)
      the split's recordings (FSDD; with ``settings.synthetic_voices`` > 0, the ten digits in
      that many synthetic voices join the training side, audio.synthetic), each through
      minidl.apps.features;
    training_copies(settings, features) ─► augmented versions of each training recording
      (minidl.apps.augmentation), when ``settings.augment``;
    fixed_length (the CNN's fixed frame count) and PaddedBatches (the recurrent models' batches
    of similar lengths).

``TrainSettings`` lists everything a training run depends on.
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Sequence as TypingSequence

import numpy as np

import audio
from audio.synthetic import missing_engines, synthetic_digits
from minidl.apps.augmentation import SPEED_AND_NOISE_COPY, AugmentSettings, augmented_copies
from minidl.apps.features import FeatureSettings, finish_features
from minidl.data import Sequence, pad_sequences

def dataset_features(fsdd, recordings, settings: FeatureSettings, progress: bool = True) -> list[np.ndarray]:
    """Features of recordings, each (frames, n_features); the MFCCs (or log mels, for kind
    "logmel") come from the feature cache after the first run, the deltas and normalisation
    are computed each time.

    FSDD's recordings share the cache of the whole data set (``fsdd.features``); any others
    (synthetic voices) are cached as a set of their own, so adding them never recomputes FSDD's.
    """
    known = {r.name for r in fsdd.recordings()}
    ours = [r for r in recordings if r.name in known]
    others = [r for r in recordings if r.name not in known]
    options = dict(n_mfcc=settings.n_mfcc, preset=settings.preset, progress=progress, trim_db=settings.trim_db,
                   kind=settings.kind)
    mfccs = dict(zip((r.name for r in ours), fsdd.features(ours, **options)))
    if others:
        mfccs.update(zip((r.name for r in others),
                         audio.cache.cached_features([r.path for r in others], settings.sample_rate, **options)))
    return [finish_features(mfccs[r.name], settings) for r in recordings]


def coverage_length(lengths: TypingSequence[int], coverage: float = 0.98) -> int:
    """The smallest frame count that holds at least ``coverage`` of the utterances whole."""
    return int(np.ceil(np.quantile(np.asarray(lengths), coverage, method="higher")))


def fixed_length(features: list[np.ndarray], frames: int) -> np.ndarray:
    """Pad with zeros or cut at the end: n utterances (frames_i, n_features) -> (n, frames, n_features)."""
    return pad_sequences(features, maxlen=frames, dtype="float32", padding="post", truncating="post")


class PaddedBatches(Sequence):
    """Batches of variable-length utterances, each padded only to its own longest member.

    Utterances are grouped by length (sorted, then cut into batches, then the batches shuffled
    each epoch) so little padding is computed; the zero padding becomes a mask in ``Masking``.
    Item i is (x (batch, longest frames, n_features) float32, labels (batch,)).
    """

    def __init__(self, features: list[np.ndarray], labels: np.ndarray, batch_size: int = 32,
                 shuffle: bool = True, seed: int = 0):
        self.features, self.labels = features, np.asarray(labels)
        order = np.argsort([len(f) for f in features], kind="stable")
        self.batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        self.shuffle = shuffle
        self.rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int):
        chosen = self.batches[self.order[index]]
        x = pad_sequences([self.features[i] for i in chosen], dtype="float32", padding="post")
        return x, self.labels[chosen]

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.batches)) if self.shuffle else np.arange(len(self.batches))


@dataclass
class TrainSettings:
    """Everything a training run depends on, recorded in metrics.json."""

    model: str = "cnn"
    epochs: int = 15
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0
    split: str = "official"
    held_out: str | None = None
    backend: str = "numpy"
    augment: bool = False
    augmentation: AugmentSettings = SPEED_AND_NOISE_COPY
    synthetic_voices: int = 0   # the ten digits in this many synthetic voices join training


def with_available_voices(settings: TrainSettings) -> TrainSettings:
    """``settings`` as this machine can train them: without the synthetic voices, and with a
    warning that says how to install their engines, when espeak-ng or flite is missing (so the
    recommended recipe still trains on a machine that has only Python)."""
    missing = missing_engines() if settings.synthetic_voices else []
    if missing:
        warnings.warn(f"{' and '.join(missing)} not installed: training without the {settings.synthetic_voices} "
                      f"synthetic voices of this recipe (`make voices` installs them)", stacklevel=2)
        return dataclasses.replace(settings, synthetic_voices=0)
    return settings


def training_recordings(settings: TrainSettings, fsdd) -> list:
    """The recordings a run trains on: the split's training side of FSDD, then the ten digits
    in each of ``settings.synthetic_voices`` synthetic voices (audio.synthetic, made once and
    cached; never tested on: the test side is FSDD's)."""
    train, _ = fsdd.split(settings.split, held_out=settings.held_out)
    if settings.synthetic_voices:
        train = train + synthetic_digits(settings.synthetic_voices)
    return train


def training_copies(settings: TrainSettings, features: FeatureSettings, fsdd=None,
                    progress: bool = True) -> list[list[np.ndarray]] | None:
    """The augmented copies of the training recordings (augmented_copies), in load_data's order;
    None unless ``settings.augment``."""
    if not settings.augment:
        return None
    fsdd = fsdd or audio.fsdd.FSDD()
    return augmented_copies(fsdd, training_recordings(settings, fsdd), features, settings.augmentation,
                            settings.seed, progress)


def load_data(settings: TrainSettings, features: FeatureSettings, fsdd=None, progress: bool = True):
    """(train_features, train_labels, test_features, test_labels, test_recordings) for a split.

    Features are lists of (frames, n_features) arrays, labels (n,) ints; ``fsdd`` defaults to
    ``audio.fsdd.FSDD()`` (its lookup order finds or downloads the recordings).
    """
    fsdd = fsdd or audio.fsdd.FSDD()
    _, test = fsdd.split(settings.split, held_out=settings.held_out)
    train = training_recordings(settings, fsdd)
    train_x = dataset_features(fsdd, train, features, progress)
    test_x = dataset_features(fsdd, test, features, progress)
    return (train_x, np.array([r.digit for r in train]), test_x, np.array([r.digit for r in test]), test)


__all__ = ["PaddedBatches", "TrainSettings", "coverage_length", "dataset_features", "fixed_length", "load_data",
           "training_copies", "training_recordings", "with_available_voices"]
