"""The spoken-digit recogniser: where minidl (the network) meets audio (the features).

The whole path from a WAV file to a digit, in reading order:

    recording ──audio.load──► signal (8 kHz) ──mfcc (HTK preset)──► (frames, 13)
      ──deltas──► (frames, 26) ──model (Normalization first)──► 10 probabilities ──argmax──► digit

The features come from ``minidl.apps.features``; by default each coefficient is standardised
over every training frame by the model's own Normalization layer (``adapt_normalization``).
Four models share that front end (``build_model``):

    cnn    MFCCs padded or cut to a fixed number of frames, seen as a (frames, 26, 1) image:
           Conv2D -> MaxPooling2D -> Conv2D -> MaxPooling2D -> Flatten -> Dense -> softmax
    lstm   every frame of the recording, padded per batch and masked:
           Masking -> LSTM (sequences) -> Dropout -> LSTM -> Dropout -> Dense softmax
    crnn   Masking -> Conv1D ('same', passes the mask on) -> Bidirectional GRU -> Dense softmax
    gapcnn Masking -> Conv1D -> Conv1D -> GlobalMaxPooling1D (over the real frames only)
           -> Dropout -> Dense softmax: where the word sits in the clip cannot matter

A training run is load_data -> build -> adapt_normalization -> fit_model -> write_report ->
plot_report (``train`` runs them in that order; ``examples/digits_*.py`` tell the same story
step by step). A saved model carries its feature settings and label names as metadata, so
``Recogniser`` needs nothing but the file. The ``minidl-digits`` command is ``minidl.apps.cli``.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import platform
import time

import numpy as np

import audio
import minidl as dl
from minidl import layers
from minidl.apps.augmentation import EpochDraws
# the data side lives in digit_data; its names stay reachable here (digits.TrainSettings, ...)
from minidl.apps.digit_data import (PaddedBatches, TrainSettings, coverage_length, dataset_features,  # noqa: F401
                                    fixed_length, load_data, training_copies, with_available_voices)
from minidl.apps.features import FeatureSettings, finish_features, signal_features
from minidl.apps.model_metadata import (check_choice, check_frames, check_labels, check_model_shapes,
                                        check_task, feature_settings_from_metadata)
from minidl.apps.plots import plot_confusion, plot_history
from minidl.callbacks import History
from minidl.saving import read_metadata

LABELS = [str(d) for d in range(10)]
MODEL_KINDS = ("cnn", "lstm", "crnn", "gapcnn")
TASK = "fsdd-digits"   # the metadata's "task": what Recogniser accepts
# Epochs per model: the CNN gains about a point from 15 to 25 (benchmarks/digits.py --only minidl:cnn
# --epochs 15 measures it against the default).
DEFAULT_EPOCHS = {"cnn": 25, "lstm": 15, "crnn": 15, "gapcnn": 15}


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

def build_cnn(frames: int, n_features: int, classes: int = 10, normalize: bool = True) -> dl.Sequential:
    """Two conv blocks over the (time, coefficient) image, then a small classifier.

    Input (batch, frames, n_features); output (batch, classes) probabilities.
    """
    return dl.Sequential([layers.Input((frames, n_features))] + normalizer(normalize) + [
        layers.Reshape((frames, n_features, 1)),
        layers.Conv2D(32, (3, 3), padding="same", activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), padding="same", activation="relu"),
        layers.MaxPooling2D((2, 2)),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(0.3),
        layers.Dense(classes, activation="softmax"),
    ], name="digits_cnn")


def build_lstm(n_features: int, classes: int = 10, units: int = 64, normalize: bool = True) -> dl.Sequential:
    """Two LSTMs over every frame; padding is masked, so no real audio is cut.

    Input (batch, frames, n_features), zero-padded; output (batch, classes) probabilities.
    """
    return dl.Sequential([layers.Input((None, n_features)), layers.Masking(0.0)] + normalizer(normalize) + [
        layers.LSTM(units, return_sequences=True),
        layers.Dropout(0.2),
        layers.LSTM(units),
        layers.Dropout(0.2),
        layers.Dense(classes, activation="softmax"),
    ], name="digits_lstm")


def build_crnn(n_features: int, classes: int = 10, filters: int = 64, units: int = 64,
               normalize: bool = True) -> dl.Sequential:
    """Convolution over time for local patterns, then a bidirectional GRU over the sequence.

    Input (batch, frames, n_features), zero-padded; output (batch, classes) probabilities.
    """
    return dl.Sequential([layers.Input((None, n_features)), layers.Masking(0.0)] + normalizer(normalize) + [
        layers.Conv1D(filters, 5, padding="same", activation="relu"),
        layers.Bidirectional(layers.GRU(units)),
        layers.Dropout(0.2),
        layers.Dense(classes, activation="softmax"),
    ], name="digits_crnn")


def build_gapcnn(n_features: int, classes: int = 10, filters: int = 64, normalize: bool = True) -> dl.Sequential:
    """Two convolutions over time, then the maximum of each filter over the whole clip.

    A digit is the same digit wherever it sits in the recording, after however much silence
    or padding: the model should not have to learn that. The convolutions share their weights
    across time, so a pattern gives the same responses at any frame, and the global maximum
    keeps only whether (and how strongly) each of the ``filters`` patterns occurred, not where:
    the time-shift invariance of the time-delay neural network (Waibel et al., 1989) and the
    max-over-time pooling of Collobert et al. (2011). Masking's mask rides through
    Normalization and both Conv1D to GlobalMaxPooling1D, so padded frames never win the
    maximum. Each filter sees 9 frames (two kernels of 5), about 90 ms of 10 ms hops.

    The last 4 real frames of a padded utterance still see padding inside their windows (its
    normalised value, -mean/std, where an unpadded one sees the convolution's zeros; Conv1D's
    docstring): their outputs, and so the prediction, can move a little with the batch an
    utterance is padded in, as the CRNN's do.

    Input (batch, frames, n_features), zero-padded; output (batch, classes) probabilities.
    """
    return dl.Sequential([layers.Input((None, n_features)), layers.Masking(0.0)] + normalizer(normalize) + [
        layers.Conv1D(filters, 5, padding="same", activation="relu"),
        layers.Conv1D(filters, 5, padding="same", activation="relu"),
        layers.GlobalMaxPooling1D(),
        layers.Dropout(0.2),
        layers.Dense(classes, activation="softmax"),
    ], name="digits_gapcnn")


def normalizer(normalize: bool) -> list:
    """[a Normalization layer] to adapt on the training frames (adapt_normalization), or []."""
    return [layers.Normalization(axis=-1, name="feature_normalization")] if normalize else []


def build_model(kind: str, features: FeatureSettings, frames: int | None = None) -> dl.Sequential:
    """One of MODEL_KINDS for these features; the CNN needs its fixed number of frames.

    The model carries a Normalization layer only for ``features.normalization == "global"``.
    """
    normalize = features.normalization == "global"
    if kind == "cnn":
        return build_cnn(frames, features.n_features, normalize=normalize)
    if kind == "lstm":
        return build_lstm(features.n_features, normalize=normalize)
    if kind == "crnn":
        return build_crnn(features.n_features, normalize=normalize)
    if kind == "gapcnn":
        return build_gapcnn(features.n_features, normalize=normalize)
    raise ValueError(f"unknown model {kind!r}; choose one of {', '.join(MODEL_KINDS)}")


def adapt_normalization(model: dl.Sequential, train_features: list[np.ndarray]) -> None:
    """Give the model's Normalization layer the mean and variance of every training frame."""
    for layer in model.layers:
        if isinstance(layer, layers.Normalization):
            layer.adapt(np.concatenate(train_features)[None])


def model_inputs(kind: str, features: list[np.ndarray], frames: int | None):
    """What the model eats: one (n, frames, n_features) array for the CNN, the list otherwise."""
    if kind == "cnn":
        return fixed_length(features, frames)
    return features


# ---------------------------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------------------------

def fit_model(kind: str, model: dl.Sequential, train_x, train_y, settings: TrainSettings,
              frames: int | None, verbose: int = 1, copies: list[list[np.ndarray]] | None = None) -> History:
    """Adam on sparse cross-entropy; 10% of the (shuffled) training data held out for the curves.

    The CNN gets fixed-length arrays; the variable-length models (lstm, crnn, gapcnn) PaddedBatches
    of similar lengths.
    ``copies`` (augmented versions of each training recording, see augmented_copies) are heard
    as ``settings.augmentation`` says: one version per recording per epoch (EpochDraws), or the
    clean set and every copy each epoch. The held-out 10% stays clean.
    """
    model.compile(optimizer=dl.optimizers.Adam(settings.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    order = np.random.default_rng(settings.seed).permutation(len(train_y))
    cut = int(0.9 * len(order))
    fit_part, val_part = order[:cut], order[cut:]
    if copies is not None:
        chosen = [[copy[i] for i in fit_part] for copy in copies]
        clean = [train_x[i] for i in fit_part]
        if settings.augmentation.epoch_draws:
            val_x = [train_x[i] for i in val_part]
            validation = ((fixed_length(val_x, frames), train_y[val_part]) if kind == "cnn"
                          else PaddedBatches(val_x, train_y[val_part], 64, shuffle=False))
            draws = EpochDraws(clean, chosen, train_y[fit_part], settings.batch_size,
                               settings.augmentation.clean_fraction, settings.seed,
                               frames if kind == "cnn" else None)
            # shuffle=False: the Sequence orders its own batches (Keras' fit would shuffle them again)
            return model.fit(draws, epochs=settings.epochs, validation_data=validation, verbose=verbose,
                             shuffle=False)
        # every version, every epoch: the clean set, then each copy
        train_x = clean + [f for copy in chosen for f in copy] + [train_x[i] for i in val_part]
        train_y = np.concatenate([train_y[fit_part]] * (1 + len(copies)) + [train_y[val_part]])
        fit_part = np.arange(len(train_y) - len(val_part))
        val_part = np.arange(len(train_y) - len(val_part), len(train_y))
    if kind == "cnn":
        x = model_inputs(kind, train_x, frames)
        return model.fit(x[fit_part], train_y[fit_part], epochs=settings.epochs, batch_size=settings.batch_size,
                         validation_data=(x[val_part], train_y[val_part]), verbose=verbose)
    batches = PaddedBatches([train_x[i] for i in fit_part], train_y[fit_part], settings.batch_size,
                            seed=settings.seed)
    validation = PaddedBatches([train_x[i] for i in val_part], train_y[val_part], 64, shuffle=False)
    return model.fit(batches, epochs=settings.epochs, validation_data=validation, verbose=verbose, shuffle=False)


def predict_probabilities(kind: str, model: dl.Sequential, features: list[np.ndarray],
                          frames: int | None, batch_size: int = 64) -> np.ndarray:
    """(n, 10) class probabilities for a list of n utterance features, in the given order."""
    if kind == "cnn":
        return model.predict(model_inputs(kind, features, frames), batch_size=batch_size)
    batches = PaddedBatches(features, np.zeros(len(features), dtype=int), batch_size, shuffle=False)
    return model.predict(batches)[_unsort(features)]


def _unsort(features: list[np.ndarray]) -> np.ndarray:
    """PaddedBatches sorts by length; this gives, for each original index, its output row."""
    order = np.argsort([len(f) for f in features], kind="stable")
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return inverse


def classification_report(y_true: np.ndarray, probabilities: np.ndarray) -> dict:
    """Accuracy, per-class precision and recall, and the confusion matrix, as JSON-able values.

    Args:
        y_true: (n,) digits; probabilities: (n, 10).
    """
    predicted = probabilities.argmax(axis=1)
    pr = dl.metrics.precision_recall(y_true, predicted, num_classes=10)
    return {"accuracy": float(np.mean(predicted == y_true)),
            "precision": [round(float(v), 4) for v in pr.precision],
            "recall": [round(float(v), 4) for v in pr.recall],
            "confusion_matrix": dl.metrics.confusion_matrix(y_true, predicted, num_classes=10).tolist()}


def versions() -> dict:
    """The versions a result was measured with: minidl, numpy, python."""
    return {"minidl": dl.__version__, "numpy": np.__version__, "python": platform.python_version()}


def save_model(model: dl.Sequential, path: str | pathlib.Path, kind: str, features: FeatureSettings,
               frames: int | None) -> None:
    """Write the model with what Recogniser needs: task, kind, feature settings, frames, labels."""
    model.save(path, metadata={"task": TASK, "model": kind, "features": features.to_dict(),
                               "frames": frames, "labels": LABELS})


def write_report(out: str | pathlib.Path, model: dl.Sequential, settings: TrainSettings,
                 features: FeatureSettings, frames: int | None, history: History, train, test,
                 training_seconds: float, feature_seconds: float) -> dict:
    """Evaluate a trained model and write model.npz and metrics.json to ``out``.

    Args:
        train, test: (features, labels) pairs, as load_data gives them.
    Returns:
        The metrics: test and train accuracy, per-class precision and recall, the confusion
        matrix, the history, timings, settings and versions.
    """
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    kind = settings.model
    report = classification_report(test[1], predict_probabilities(kind, model, test[0], frames))
    train_accuracy = classification_report(train[1], predict_probabilities(kind, model, train[0], frames))["accuracy"]
    save_model(model, out / "model.npz", kind, features, frames)
    metrics = {"model": kind, "split": settings.split, "held_out": settings.held_out,
               "test_accuracy": report["accuracy"], "train_accuracy": train_accuracy,
               "per_class": {"precision": report["precision"], "recall": report["recall"]},
               "confusion_matrix": report["confusion_matrix"],
               "training_seconds": round(training_seconds, 2), "feature_seconds": round(feature_seconds, 2),
               "frames": frames, "parameters": model.count_params(), "settings": dataclasses.asdict(settings),
               "features": features.to_dict(), "history": history.history, "versions": versions()}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics


def plot_report(out: str | pathlib.Path, metrics: dict) -> None:
    """Draw confusion.png and training_curves.png into ``out`` from write_report's metrics."""
    out = pathlib.Path(out)
    title = f"{metrics['model']}, {metrics['split']} split"
    if metrics["held_out"]:
        title += f", {metrics['held_out']} held out"
    plot_confusion(np.array(metrics["confusion_matrix"]), LABELS, out / "confusion.png",
                   f"{title}: {100 * metrics['test_accuracy']:.1f}% correct")
    plot_history(metrics["history"], out / "training_curves.png", title)


def train(settings: TrainSettings, out: str | pathlib.Path, features: FeatureSettings | None = None,
          fsdd=None, verbose: int = 1, progress: bool = True) -> dict:
    """Train one model on one split, evaluate it, and write the run's files to ``out``:

    model.npz (weights + feature settings), metrics.json, confusion.png, training_curves.png.
    Returns the metrics dict (write_report's).
    """
    features = features or FeatureSettings()
    settings = with_available_voices(settings)
    dl.backend.use(settings.backend)
    dl.random.seed(settings.seed)

    start = time.perf_counter()
    fsdd = fsdd or audio.fsdd.FSDD()
    train_x, train_y, test_x, test_y, _ = load_data(settings, features, fsdd, progress)
    copies = training_copies(settings, features, fsdd, progress)
    feature_seconds = time.perf_counter() - start

    frames = coverage_length([len(f) for f in train_x]) if settings.model == "cnn" else None
    model = build_model(settings.model, features, frames)
    adapt_normalization(model, train_x)
    start = time.perf_counter()
    history = fit_model(settings.model, model, train_x, train_y, settings, frames, verbose, copies)
    training_seconds = time.perf_counter() - start

    metrics = write_report(out, model, settings, features, frames, history, (train_x, train_y),
                           (test_x, test_y), training_seconds, feature_seconds)
    plot_report(out, metrics)
    return metrics


# ---------------------------------------------------------------------------------------------
# Using a saved model
# ---------------------------------------------------------------------------------------------

MAX_PREDICT_SECONDS = 600.0   # predict's longest file, far past any digit; stream reads any length


def check_metadata(metadata) -> None:
    """What Recogniser needs of a model file's metadata (``load_model(validate_metadata=)``): task
    TASK, a model of MODEL_KINDS, sane features, frames for the CNN, 10 printable labels (if any);
    else a ValueError naming what is wrong (minidl.apps.model_metadata); load_model adds the file."""
    check_task(metadata, TASK, "a spoken-digit model", "train one with `minidl-digits train`")
    kind = check_choice(metadata.get("model"), MODEL_KINDS, "model kind")
    feature_settings_from_metadata(metadata.get("features"))
    check_frames(metadata.get("frames"), required=kind == "cnn")
    check_labels(metadata.get("labels", LABELS), len(LABELS))


class Recogniser:
    """A saved digit model with its feature settings: ``Recogniser(path).classify(signal)``.

    Raises:
        FileNotFoundError: no file at ``path``; minidl.saving.ModelFileError (a ValueError, naming
            the file): not a model ``train`` wrote (check_metadata), or its shapes do not fit.
    """

    def __init__(self, path: str | pathlib.Path):
        self.path = pathlib.Path(path)
        metadata = read_metadata(self.path, validate_metadata=check_metadata)  # before any weight is read
        self.model = dl.load_model(self.path, validate_metadata=check_metadata)
        self.kind = metadata["model"]
        self.features = feature_settings_from_metadata(metadata["features"])
        self.frames = metadata.get("frames")
        self.labels = metadata.get("labels", LABELS)
        check_model_shapes(self.model, self.path, (None, self.frames if self.kind == "cnn" else None,
                                                   self.features.n_features), len(self.labels))

    def probabilities(self, features: list[np.ndarray]) -> np.ndarray:
        """(n, 10) probabilities for n utterances' features, each (frames, n_features)."""
        return predict_probabilities(self.kind, self.model, features, self.frames)

    def signal_probabilities(self, signals: list[np.ndarray]) -> np.ndarray:
        """(n, 10) probabilities for n signals at the model's sample rate."""
        return self.probabilities([signal_features(signal, self.features) for signal in signals])

    def mfcc_probabilities(self, mfccs: list[np.ndarray]) -> np.ndarray:
        """(n, 10) probabilities for n utterances' (frames, n_mfcc) MFCCs, or (frames, n_mels)
        log mels for features of kind "logmel" (a stream's segments: deltas and normalisation
        are added here, trimming is the endpointer's job)."""
        return self.probabilities([finish_features(m, self.features) for m in mfccs])

    def recording_probabilities(self, fsdd, recordings: list, progress: bool = True) -> np.ndarray:
        """(n, 10) probabilities for n recordings of ``fsdd``, their MFCCs from its feature cache."""
        return self.probabilities(dataset_features(fsdd, recordings, self.features, progress))

    def classify(self, signal: np.ndarray) -> tuple[str, float]:
        """(label, probability) for one signal at the model's sample rate."""
        p = self.signal_probabilities([signal])[0]
        return self.labels[int(p.argmax())], float(p.max())

    def predict_file(self, path, max_seconds: float | None = MAX_PREDICT_SECONDS) -> dict:
        """{path, digit, probability} for one audio file; AudioError if it cannot be read or is
        longer than ``max_seconds`` (refused before it is decoded)."""
        signal, _ = audio.load(path, sample_rate=self.features.sample_rate, max_seconds=max_seconds)
        label, probability = self.classify(signal)
        return {"path": str(path), "digit": label, "probability": round(probability, 4)}


def predict_files(model, paths: list[str], max_seconds: float | None = MAX_PREDICT_SECONDS) -> list[dict]:
    """One dict per file: {path, digit, probability} or {path, error}; a bad file spoils no other.
    ``model`` is a Recogniser or its file; ``max_seconds`` as Recogniser.predict_file."""
    recogniser = model if isinstance(model, Recogniser) else Recogniser(model)
    results = []
    for path in paths:
        try:
            results.append(recogniser.predict_file(path, max_seconds))
        except audio.AudioError as error:
            results.append({"path": str(path), "error": str(error)})
    return results
