"""Connected-digit recognition with CTC: from a recording of several digits to the digit string.

Isolated digits are classification (one label per file, ``minidl.apps.digits``); this module
reads a *sequence*. The network emits, for every frame, a distribution over 11 classes — a
blank and the ten digits — and connectionist temporal classification (CTC, Graves et al. 2006)
trains it without ever saying which frame belongs to which digit:

    recording ──audio.load──► signal (8 kHz) ──mfcc (HTK), deltas, per-utterance CMVN──►
    (frames, 26) ──Conv1D 'same', strides 3──► (⌈frames/3⌉, 64) ──Bidirectional GRU──►
    (⌈frames/3⌉, 128) ──Dense(11), log_softmax──► log-probabilities ──CTC loss / decoding──►
    "4071"

Labels: class 0 is the CTC blank and digit d is class d + 1 (``encode`` / ``decode_labels``).
Training is a hand-written loop, because the loss needs each utterance's lengths:

    y = model(x, training=True)          x carries the (batch, frames) mask of real frames
    log_probs = F.log_softmax(y)         the mask, strided by the Conv1D, gives the lengths
    loss = ctc_loss(log_probs, targets, output_lengths, target_lengths)
    loss.backward(); optimizer.apply(model.trainable_weights)

Decoding is greedy (best path) or prefix beam search (``minidl.decoding``); errors are counted
as word (here: digit) error rate and whole-string accuracy. A saved model carries its feature
settings (``FEATURES``: ``minidl.apps.features`` normalised per utterance), so
``transcribe(model.npz, file.wav)`` needs nothing else; it is also the ``minidl-digits
transcribe`` command. ``examples/connected_digits_ctc.py`` tells the story.
"""
from __future__ import annotations

import dataclasses
import pathlib
from dataclasses import dataclass
from typing import Iterator, Sequence as TypingSequence

import numpy as np

import audio
from minidl import backend
from minidl import functional as F
from minidl.apps.features import FeatureSettings, finish_features, signal_features
from minidl.apps.model_metadata import check_model_shapes, check_task, feature_settings_from_metadata
from minidl.apps.plots import pyplot
from minidl.decoding import beam_search_decode, greedy_decode
from minidl.function import no_grad
from minidl.functional.ctc import ctc_loss
from minidl.layers.conv import Conv1D
from minidl.layers.core import Dense
from minidl.layers.recurrent import GRU, LSTM
from minidl.layers.wrappers import Bidirectional
from minidl.metrics import word_error_rate
from minidl.models import Sequential
from minidl.saving import load_model, read_metadata
from minidl.tensor import Tensor

BLANK = 0
NUM_CLASSES = 11          # blank + ten digits
TASK = "connected-digits-ctc"


# ---------------------------------------------------------------------------------------------
# Labels
# ---------------------------------------------------------------------------------------------

def encode(transcript: str) -> list[int]:
    """A digit string as CTC classes: "407" -> [5, 1, 8] (digit d is class d + 1; 0 is blank)."""
    if not transcript.isdigit() or not transcript.isascii():
        raise ValueError(f"encode: a transcript must be a string of digits 0-9, got {transcript!r}")
    return [int(c) + 1 for c in transcript]


def decode_labels(labels: TypingSequence[int]) -> str:
    """CTC classes back to a digit string: [5, 1, 8] -> "407". Blanks must already be gone."""
    bad = [k for k in labels if not 1 <= k < NUM_CLASSES]
    if bad:
        raise ValueError(f"decode_labels: classes must be digits 1-10 (0 is the blank), got {bad[:5]}")
    return "".join(str(k - 1) for k in labels)


# ---------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------

# The spoken-digit features (HTK MFCCs + deltas), here normalised per utterance (CMVN): a
# connected-digit string is long enough for its own statistics, and the CTC model has no
# Normalization layer to adapt.
FEATURES = FeatureSettings(normalization="utterance")


def dataset_features(dataset, settings: FeatureSettings, progress: bool = True) -> list[np.ndarray]:
    """Features of every utterance of an audio.connected_digits.ConnectedDigits (MFCCs cached):
    a list of (frames, settings.n_features) float32 arrays, in the data set's order."""
    if dataset.sample_rate != settings.sample_rate:
        raise ValueError(f"dataset_features: the data set is at {dataset.sample_rate} Hz, the "
                         f"feature settings at {settings.sample_rate} Hz")
    if settings.kind != "mfcc":
        raise ValueError(f"dataset_features: the connected-digit data set caches MFCCs only; expected "
                         f"FeatureSettings.kind 'mfcc', got {settings.kind!r}")
    mfccs = dataset.features(n_mfcc=settings.n_mfcc, preset=settings.preset, progress=progress)
    return [finish_features(m, settings) for m in mfccs]


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelSettings:
    """The network: Conv1D front end, one bidirectional recurrent layer, Dense(11)."""

    filters: int = 64
    kernel_size: int = 5
    strides: int = 3         # 30 ms per output frame: a digit still spans ~10 frames
    units: int = 64
    cell: str = "gru"        # "gru" or "lstm"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ModelSettings":
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


def build_model(n_features: int, settings: ModelSettings = ModelSettings()) -> Sequential:
    """MFCC frames -> per-frame scores of the 11 CTC classes (apply log_softmax for CTC).

        Conv1D(filters, kernel_size, strides, 'same', relu)   local spectral patterns; the
                                                              stride shortens the sequence
        Bidirectional(GRU or LSTM, return_sequences=True)     context from both sides
        Dense(11)                                             blank + ten digits, per frame

    Input (batch, frames, n_features) with a (batch, frames) mask; output (batch,
    ⌈frames / strides⌉, 11) whose mask is the input mask strided (see output_lengths).
    """
    if settings.cell not in ("gru", "lstm"):
        raise ValueError(f"build_model: cell must be 'gru' or 'lstm', got {settings.cell!r}")
    cell = GRU if settings.cell == "gru" else LSTM
    return Sequential([
        Conv1D(settings.filters, settings.kernel_size, strides=settings.strides, padding="same",
               activation="relu", input_shape=(None, n_features)),
        Bidirectional(cell(settings.units, return_sequences=True)),
        Dense(NUM_CLASSES),
    ], name="ctc_digits")


def output_lengths(lengths, strides: int) -> np.ndarray:
    """Frames left after a 'same' Conv1D of ``strides``: ⌈length / strides⌉ for each length.

    This is what the mask gives: the Conv1D keeps output step t when input step t·strides is
    real, and for a right-padded length L those are t < ⌈L / strides⌉.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    return -(-lengths // int(strides))


def log_probabilities(model: Sequential, x: np.ndarray, mask: np.ndarray,
                      training: bool = False) -> tuple[Tensor, np.ndarray]:
    """(log_probs (batch, steps, 11) Tensor, output lengths (batch,) ints) for a padded batch.

    The lengths are read from the mask that comes out of the model, so they follow whatever
    the layers do to time (the Conv1D's stride).
    """
    device = "gpu" if backend.current() == "cupy" else "cpu"
    inputs = Tensor(backend.to_device(x, device))
    inputs.mask = backend.to_device(mask, device)
    scores = model(inputs, training=training)
    if scores.mask is None:
        raise ValueError("log_probabilities: the model dropped the mask, so output lengths are "
                         "unknown; every layer between input and output must pass it on")
    lengths = backend.to_numpy(scores.mask).sum(axis=1).astype(np.int64)
    return F.log_softmax(scores, axis=-1), lengths


# ---------------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------------

@dataclass
class Batch:
    """A padded batch: features (batch, frames, n_features) float32, mask (batch, frames) bool,
    targets (batch, max_digits) int64 padded with 0, target_lengths (batch,), and which
    utterances these are (indices into the data set)."""

    x: np.ndarray
    mask: np.ndarray
    targets: np.ndarray
    target_lengths: np.ndarray
    indices: np.ndarray


def make_batch(features: TypingSequence[np.ndarray], transcripts: TypingSequence[str] | None,
               indices: np.ndarray) -> Batch:
    """Right-pad the chosen utterances to the longest among them; mask the padding out.

    ``transcripts`` None (prediction) gives empty targets."""
    lengths = np.array([len(features[i]) for i in indices], dtype=np.int64)
    width = features[indices[0]].shape[1]
    x = np.zeros((len(indices), int(lengths.max()), width), dtype=np.float32)
    for row, i in enumerate(indices):  # utterances differ in length: no single array op
        x[row, :lengths[row]] = features[i]
    labels = [[] if transcripts is None else encode(transcripts[i]) for i in indices]
    target_lengths = np.array([len(t) for t in labels], dtype=np.int64)
    targets = np.zeros((len(indices), max(1, int(target_lengths.max()))), dtype=np.int64)
    for row, t in enumerate(labels):
        targets[row, :len(t)] = t
    mask = np.arange(x.shape[1])[None, :] < lengths[:, None]
    return Batch(x, mask, targets, target_lengths, np.asarray(indices))


def batches(features: TypingSequence[np.ndarray], transcripts: TypingSequence[str] | None,
            batch_size: int = 32, rng: np.random.Generator | None = None) -> Iterator[Batch]:
    """Batches of utterances of similar length (little padding), in random order.

    With ``rng``: shuffle, cut into pools of 20 batches, sort each pool by length, cut the pool
    into batches, and shuffle the batches. Without: in order of length (for evaluation).
    """
    if batch_size < 1:
        raise ValueError(f"batches: batch_size must be >= 1, got {batch_size}")
    lengths = np.array([len(f) for f in features])
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        groups = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    else:
        order = rng.permutation(len(features))
        pool = 20 * batch_size
        groups = []
        for start in range(0, len(order), pool):
            chunk = order[start:start + pool]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            groups += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
        groups = [groups[i] for i in rng.permutation(len(groups))]
    for group in groups:
        yield make_batch(features, transcripts, group)


# ---------------------------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------------------------

def train_step(model: Sequential, optimizer, batch: Batch) -> float:
    """One update on one batch; returns the batch's CTC loss (mean over the batch of each
    utterance's loss divided by its number of digits)."""
    log_probs, lengths = log_probabilities(model, batch.x, batch.mask, training=True)
    loss = ctc_loss(log_probs, batch.targets, lengths, batch.target_lengths, blank=BLANK,
                    zero_infinity=True)
    loss.backward()
    optimizer.apply(model.trainable_weights)
    return float(backend.to_numpy(loss.data))


def train_epoch(model: Sequential, optimizer, features, transcripts, batch_size: int = 32,
                rng: np.random.Generator | None = None) -> float:
    """One pass over the training set in shuffled, length-bucketed batches; the mean loss.

    ``zero_infinity`` drops an utterance too short for its digits (cannot happen with the
    default stride, as a digit lasts ~10 output frames) rather than poisoning the weights.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    losses, counts = [], []
    for batch in batches(features, transcripts, batch_size, rng):
        losses.append(train_step(model, optimizer, batch))
        counts.append(len(batch.indices))
    return float(np.average(losses, weights=counts))


def predict_log_probs(model: Sequential, features: TypingSequence[np.ndarray],
                      batch_size: int = 64) -> list[np.ndarray]:
    """Each utterance's log-probabilities (steps, 11), float32 numpy, in the given order."""
    out: list[np.ndarray | None] = [None] * len(features)
    with no_grad():
        for batch in batches(features, None, batch_size):
            log_probs, lengths = log_probabilities(model, batch.x, batch.mask)
            values = backend.to_numpy(log_probs.data)
            for row, i in enumerate(batch.indices):
                out[i] = values[row, :lengths[row]]
    return out


def decode(log_probs: TypingSequence[np.ndarray], beam_width: int | None = None) -> list[str]:
    """Digit strings from per-utterance log-probabilities: greedy, or prefix beam search."""
    strings = []
    for values in log_probs:
        if beam_width is None:
            labels = greedy_decode(values[None], blank=BLANK)[0]
        else:
            labels = beam_search_decode(values[None], beam_width=beam_width, blank=BLANK)[0]
        strings.append(decode_labels(labels))
    return strings


def score(references: TypingSequence[str], hypotheses: TypingSequence[str]) -> dict:
    """Sequence accuracy (whole strings right) and word error rate, each digit a word."""
    return {"sequence_accuracy": float(np.mean([r == h for r, h in zip(references, hypotheses)])),
            "wer": float(word_error_rate([list(r) for r in references],
                                         [list(h) for h in hypotheses]))}


def evaluate(model: Sequential, features, transcripts, beam_width: int = 8,
             batch_size: int = 64) -> dict:
    """Greedy and beam-search results on a data set.

    Returns:
        {"greedy": {"sequence_accuracy", "wer"}, "beam": {...}, "beam_width",
        "greedy_strings", "beam_strings"}.
    """
    log_probs = predict_log_probs(model, features, batch_size)
    greedy, beam = decode(log_probs), decode(log_probs, beam_width)
    return {"greedy": score(transcripts, greedy), "beam": score(transcripts, beam),
            "beam_width": beam_width, "greedy_strings": greedy, "beam_strings": beam}


def forced_alignment(log_probs: np.ndarray, transcript: str) -> np.ndarray:
    """The most probable frame-level path that reads ``transcript`` (Viterbi over CTC's states).

    The states are CTC's extended labels l' = (blank, l_1, blank, ..., l_S, blank); the
    recursion is the CTC forward one with max in place of log-sum-exp:

        v_0(0) = y_0(blank), v_0(1) = y_0(l_1), v_0(s) = -∞ otherwise
        v_t(s) = y_t(l'_s) + max(v_{t-1}(s), v_{t-1}(s-1), v_{t-1}(s-2) if l'_s ≠ blank, l'_{s-2})

    then back-tracking from the better of the two final states. Vectorised over states;
    the loop runs over frames.

    Args:
        log_probs: (steps, 11) of one utterance.
        transcript: its digit string.
    Returns:
        (steps,) ints: the class of each frame on the best path (0 = blank).
    Raises:
        ValueError: the utterance has too few frames for the transcript.
    """
    labels = np.array(encode(transcript), dtype=np.int64)
    steps = len(log_probs)
    extended = np.full(2 * len(labels) + 1, BLANK, dtype=np.int64)
    extended[1::2] = labels
    states = len(extended)
    skip = np.zeros(states, dtype=bool)
    skip[2:] = (extended[2:] != BLANK) & (extended[2:] != extended[:-2])
    v = np.full(states, -np.inf)
    v[:min(2, states)] = log_probs[0, extended[:min(2, states)]]
    back = np.zeros((steps, states), dtype=np.int64)
    for t in range(1, steps):
        stay = v
        step = np.concatenate([[-np.inf], v[:-1]])
        jump = np.where(skip, np.concatenate([[-np.inf, -np.inf], v[:-2]]), -np.inf)
        choices = np.stack([stay, step, jump])                  # (3, states): from s, s-1, s-2
        best = choices.argmax(axis=0)
        back[t] = np.arange(states) - best
        v = choices[best, np.arange(states)] + log_probs[t, extended]
    finals = [states - 1] + ([states - 2] if states > 1 else [])
    state = max(finals, key=lambda s: v[s])
    if not np.isfinite(v[state]):
        raise ValueError(f"forced_alignment: {steps} frames cannot hold the {len(labels)} "
                         f"digits of {transcript!r}")
    path = np.empty(steps, dtype=np.int64)
    for t in range(steps - 1, -1, -1):  # back-tracking is sequential by nature
        path[t] = extended[state]
        state = back[t, state]
    return path


# ---------------------------------------------------------------------------------------------
# Saving and transcribing
# ---------------------------------------------------------------------------------------------

def save(model: Sequential, path: str | pathlib.Path, features: FeatureSettings,
         settings: ModelSettings) -> None:
    """Write the model with what transcribe needs: feature settings, labels, blank."""
    model.save(path, metadata={"task": TASK, "features": features.to_dict(),
                               "model": settings.to_dict(), "blank": BLANK,
                               "labels": ["<blank>"] + [str(d) for d in range(10)]})


MAX_TRANSCRIBE_SECONDS = 600.0   # the whole file goes through the network at once


def check_metadata(metadata) -> None:
    """What Transcriber needs of a model file's metadata (``load_model(validate_metadata=)``):
    task TASK and sane features (keys a file lacks take FEATURES'); else a ValueError naming what
    is wrong (minidl.apps.model_metadata); load_model adds the file."""
    check_task(metadata, TASK, "a connected-digit CTC model")
    feature_settings_from_metadata(metadata.get("features"), FEATURES)


class Transcriber:
    """A saved CTC digit model with its feature settings, ready to read signals or files.

    Raises:
        FileNotFoundError: no file at ``path``; minidl.saving.ModelFileError (a ValueError, naming
            the file): not a CTC model ``save`` wrote (check_metadata), or its shapes do not fit.
    """

    def __init__(self, path: str | pathlib.Path, beam_width: int = 8):
        metadata = read_metadata(path, validate_metadata=check_metadata)  # before any weight is read
        # Keys a file lacks take this model's defaults (per-utterance CMVN), not the isolated
        # digits' (global): files written when ctc_digits had its own FeatureSettings class
        # read the same either way, as they carry every key.
        self.features = feature_settings_from_metadata(metadata["features"], FEATURES)
        self.model = load_model(path, validate_metadata=check_metadata)
        self.beam_width = beam_width
        check_model_shapes(self.model, path, (None, None, self.features.n_features),
                           NUM_CLASSES)

    def transcribe_signal(self, signal: np.ndarray) -> str:
        """The digit string of a signal at the model's sample rate (8 kHz)."""
        features = signal_features(signal, self.features)
        log_probs = predict_log_probs(self.model, [features])
        return decode(log_probs, self.beam_width)[0]

    def transcribe_file(self, path: str | pathlib.Path,
                        max_seconds: float | None = MAX_TRANSCRIBE_SECONDS) -> str:
        """The digit string of an audio file (resampled to the model's rate).

        Raises:
            audio.AudioError: the file cannot be read, or is longer than ``max_seconds``.
        """
        signal, _ = audio.load(path, sample_rate=self.features.sample_rate, max_seconds=max_seconds)
        return self.transcribe_signal(signal)


def transcribe(model_path: str | pathlib.Path, wav_path: str | pathlib.Path,
               beam_width: int = 8) -> str:
    """The digit string spoken in ``wav_path``, by the CTC model saved at ``model_path``."""
    return Transcriber(model_path, beam_width).transcribe_file(wav_path)


__all__ = [
    "BLANK", "FEATURES", "MAX_TRANSCRIBE_SECONDS", "NUM_CLASSES", "Batch", "ModelSettings",
    "Transcriber", "batches", "build_model", "check_metadata", "dataset_features", "decode",
    "decode_labels", "encode", "evaluate", "forced_alignment",
    "log_probabilities", "make_batch", "output_lengths", "predict_log_probs", "save", "score",
    "train_epoch", "train_step", "transcribe",
]
