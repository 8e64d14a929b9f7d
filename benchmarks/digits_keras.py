"""The Keras anchor of a named recipe: the same data, the same batches, the same CRNN, in Keras 3.

    python benchmarks/digits.py --split speaker --recipe trim draws --library keras --seeds 1 2 3 --jobs 2

A minidl recipe run (benchmarks/digits.py recipe_worker -> minidl.apps.digits.train) and its
Keras anchor (keras_recipe_worker, here) share everything but the library that trains:

* the data: digit_data.load_data and training_copies with the recipe's TrainSettings and
  FeatureSettings (the same feature and augmented-copy caches, synthetic voices included when
  their engines are installed, dropped with the same warning when not);
* the batches: ``training_batches`` makes the same 10% validation cut (a permutation seeded by
  the recipe's seed) and the same EpochDraws / PaddedBatches that minidl's fit_model makes, and
  ``SameEpochs`` hands them to Keras so that each epoch's batches come in minidl's order (see its
  docstring for the calls of Keras' it has to step around);
* the model: ``keras_crnn`` is minidl.apps.digits.build_crnn in Keras layers, with its
  Normalization adapted on the same training frames (none for per-utterance CMVN recipes);
  Keras' Conv1D drops a mask where minidl's passes it on, so it is told to pass it on, or the
  GRU would run over the padded frames of each batch;
* Adam at the recipe's learning rate, sparse cross-entropy, the recipe's epochs (or
  ``--epochs``); the held-out speaker's test files scored one padded batch at a time.

Initial weights and dropout masks are each library's own (both seeded by the recipe's seed).
"""
from __future__ import annotations

import os
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from minidl.apps.augmentation import EpochDraws  # noqa: E402
from minidl.apps.digit_data import PaddedBatches, TrainSettings  # noqa: E402
from minidl.data import Sequence  # noqa: E402


def keras_crnn(n_features: int, train_frames: np.ndarray | None, classes: int = 10, filters: int = 64,
               units: int = 64) -> keras.Sequential:
    """minidl.apps.digits.build_crnn, layer for layer, in Keras.

    Args:
        n_features: coefficients per frame.
        train_frames: (1, frames, n_features) every training frame, which the Normalization
            layer is adapted on; None for no Normalization layer (per-utterance CMVN features).
    Returns:
        A Sequential of input (batch, frames, n_features), zero-padded, and output (batch,
        classes) probabilities.
    """
    convolution = keras.layers.Conv1D(filters, 5, padding="same", activation="relu")
    # minidl's Conv1D passes the mask on to the GRU; Keras' would drop it (warning) and its GRU
    # would read the padding. With 'same' padding each output frame stays where its input was,
    # so the input's mask is the output's.
    convolution.supports_masking = True
    normalization = []
    if train_frames is not None:
        normalization = [keras.layers.Normalization(axis=-1, name="feature_normalization")]
        normalization[0].adapt(train_frames)
    return keras.Sequential([keras.Input((None, n_features)), keras.layers.Masking(0.0), *normalization,
                             convolution,
                             keras.layers.Bidirectional(keras.layers.GRU(units)),
                             keras.layers.Dropout(0.2),
                             keras.layers.Dense(classes, activation="softmax")], name="digits_crnn_keras")


def training_batches(train_x: list[np.ndarray], train_y: np.ndarray, settings: TrainSettings,
                     copies: list[list[np.ndarray]] | None) -> tuple[Sequence, PaddedBatches]:
    """(training batches, validation batches) exactly as minidl.apps.digits.fit_model makes them
    for a recurrent model: the same 10% cut, the same EpochDraws or PaddedBatches, the same seeds.

    Args:
        train_x: n training utterances, each (frames, n_features); train_y: (n,) digits.
        copies: augmented versions, copies[k][i] for train_x[i] (training_copies), or None.
    """
    order = np.random.default_rng(settings.seed).permutation(len(train_y))
    cut = int(0.9 * len(order))
    fit_part, val_part = order[:cut], order[cut:]
    validation = PaddedBatches([train_x[i] for i in val_part], train_y[val_part], 64, shuffle=False)
    clean = [train_x[i] for i in fit_part]
    if copies is None:
        return PaddedBatches(clean, train_y[fit_part], settings.batch_size, seed=settings.seed), validation
    chosen = [[copy[i] for i in fit_part] for copy in copies]
    if settings.augmentation.epoch_draws:
        return EpochDraws(clean, chosen, train_y[fit_part], settings.batch_size,
                          settings.augmentation.clean_fraction, settings.seed), validation
    # every version, every epoch: the clean set, then each copy
    everything = clean + [f for copy in chosen for f in copy]
    labels = np.concatenate([train_y[fit_part]] * (1 + len(copies)))
    return PaddedBatches(everything, labels, settings.batch_size, seed=settings.seed), validation


class KerasBatches(keras.utils.PyDataset):
    """A minidl Sequence as a Keras PyDataset: the same items, and no epoch hooks (for
    unshuffled batches, such as validation's, whose epochs are all alike)."""

    def __init__(self, sequence: Sequence):
        super().__init__()
        self.sequence = sequence

    def __len__(self) -> int:
        return len(self.sequence)

    def __getitem__(self, index: int):
        return self.sequence[index]


class SameEpochs(KerasBatches):
    """A minidl Sequence as a Keras PyDataset whose epochs see the batches minidl's fit sees.

    minidl's fit takes epoch 1's batches as the Sequence was made and calls ``on_epoch_end``
    after each epoch. Keras does more: before training it begins an epoch to fetch batch 0 (to
    build the optimizer and metrics), then calls ``on_epoch_end`` (EpochIterator.reset), and
    only then begins epoch 1. So the Sequence moves on here when an epoch begins after one whose
    last batch was served, and Keras' own ``on_epoch_end`` is left without effect. Batches must
    be fetched in order (train with ``shuffle=False``, which also keeps Keras from shuffling
    the Sequence's order again), and there must be at least two of them, or the look at batch 0
    could not be told from an epoch.
    """

    def __init__(self, sequence: Sequence):
        if len(sequence) < 2:
            raise ValueError(f"SameEpochs: needs at least 2 batches per epoch, got {len(sequence)}")
        super().__init__(sequence)
        self.epoch_done = False

    def __getitem__(self, index: int):
        self.epoch_done = self.epoch_done or index == len(self) - 1
        return self.sequence[index]

    def on_epoch_begin(self) -> None:
        if self.epoch_done:
            self.sequence.on_epoch_end()
            self.epoch_done = False

    def on_epoch_end(self) -> None:
        pass


def fit_keras(net: keras.Model, train_x: list[np.ndarray], train_y: np.ndarray, settings: TrainSettings,
              copies: list[list[np.ndarray]] | None, verbose: int = 0):
    """Adam on sparse cross-entropy over training_batches' batches, as fit_model trains minidl's
    CRNN; returns Keras' History."""
    training, validation = training_batches(train_x, train_y, settings, copies)
    net.compile(optimizer=keras.optimizers.Adam(settings.learning_rate),
                loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return net.fit(SameEpochs(training), epochs=settings.epochs, validation_data=KerasBatches(validation),
                   verbose=verbose, shuffle=False)


def predict_keras(net: keras.Model, features: list[np.ndarray], batch_size: int = 64) -> np.ndarray:
    """(n, classes) probabilities for n utterances (frames_i, n_features), in the given order;
    padded batches of similar lengths, as minidl's predict_probabilities."""
    batches = PaddedBatches(features, np.zeros(len(features), dtype=int), batch_size, shuffle=False)
    sorted_probabilities = np.concatenate([np.asarray(net.predict_on_batch(batches[i][0]))
                                           for i in range(len(batches))])
    probabilities = np.empty_like(sorted_probabilities)
    probabilities[np.argsort([len(f) for f in features], kind="stable")] = sorted_probabilities
    return probabilities


def keras_recipe_worker(name: str, split: str, held_out: str | None, seed: int, threads: int,
                        epochs: int | None = None, fsdd=None) -> dict:
    """One Keras training of a named recipe on one split, as a record with recipe_worker's keys
    (library "keras"); ``epochs`` replaces the recipe's (``epochs_override`` says so)."""
    from _timing import environment  # noqa: PLC0415 (benchmarks/, the script's folder; a worker runs as digits.py)
    import torch  # noqa: PLC0415

    import audio  # noqa: PLC0415
    from minidl.apps import digit_data  # noqa: PLC0415
    from minidl.apps.recipes import recipe  # noqa: PLC0415
    overrides = dict(split=split, held_out=held_out, seed=seed) | ({"epochs": epochs} if epochs else {})
    settings, features = recipe(name, **overrides)
    settings = digit_data.with_available_voices(settings)
    if settings.model != "crnn":
        raise SystemExit(f"the Keras anchor trains the CRNN recipes only; recipe {name!r} is a {settings.model}")
    torch.set_num_threads(threads)
    start = time.perf_counter()
    fsdd = fsdd or audio.fsdd.FSDD()
    train_x, train_y, test_x, test_y, _ = digit_data.load_data(settings, features, fsdd, progress=False)
    copies = digit_data.training_copies(settings, features, fsdd, progress=False)
    feature_seconds = time.perf_counter() - start
    keras.utils.set_random_seed(seed)
    net = keras_crnn(features.n_features,
                     np.concatenate(train_x)[None] if features.normalization == "global" else None)
    fit_start = time.perf_counter()
    fit_keras(net, train_x, train_y, settings, copies)
    training_seconds = time.perf_counter() - fit_start
    predicted = predict_keras(net, test_x).argmax(axis=1)
    return {"name": "fsdd_digits", "library": "keras", "model": settings.model, "recipe": name, "split": split,
            "held_out": held_out, "epochs": settings.epochs, "epochs_override": bool(epochs), "seed": seed,
            "batch_size": settings.batch_size, "augment": settings.augment,
            "version": f"keras {keras.__version__}, torch {torch.__version__}",
            "test_accuracy": float(np.mean(predicted == test_y)), "training_seconds": round(training_seconds, 2),
            "feature_seconds": round(feature_seconds, 2), "wall_seconds": round(time.perf_counter() - start, 2),
            "parameters": int(net.count_params()), "threads": threads, "torch_threads": torch.get_num_threads(),
            "load_average": round(os.getloadavg()[0], 2), "synthetic_voices": settings.synthetic_voices,
            "features": features.to_dict(), "augmentation": settings.augmentation.to_dict(),
            "environment": environment()}
