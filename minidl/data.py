"""Batches for training: shuffled index batches, padding to a common length, masks, Sequence.

A Sequence gives whole batches, so each batch can be padded only to its own longest item —
the way variable-length speech is fed to recurrent layers.
"""
from __future__ import annotations

from typing import Iterator, Sequence as TypingSequence

import numpy as np

from minidl import random


class Sequence:
    """A data source of whole batches, as ``keras.utils.Sequence``.

    Subclasses define ``__len__`` (batches per epoch) and ``__getitem__(index)`` returning
    ``(x, y)`` or ``(x, y, sample_weight)``; ``on_epoch_end`` may reshuffle.
    """

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int):
        raise NotImplementedError

    def on_epoch_end(self) -> None:
        """Called after every epoch (reshuffle here)."""


def batch_indices(num_samples: int, batch_size: int, shuffle: bool = True) -> Iterator[np.ndarray]:
    """Index arrays of successive batches; the last may be smaller. Shuffling uses dl.random."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    order = random.generator().permutation(num_samples) if shuffle else np.arange(num_samples)
    for start in range(0, num_samples, batch_size):
        yield order[start:start + batch_size]


def pad_sequences(sequences: TypingSequence, maxlen: int | None = None, dtype: str = "float32",
                  padding: str = "pre", truncating: str = "pre", value: float = 0.0) -> np.ndarray:
    """Pad (or cut) sequences of shape (length, ...) to one length, as keras' pad_sequences.

    Returns (num_sequences, maxlen, ...). Keras' defaults pad and cut at the front ("pre");
    recurrent layers with masks usually want ``padding="post"``.
    """
    if padding not in ("pre", "post") or truncating not in ("pre", "post"):
        raise ValueError(f"pad_sequences: padding and truncating must be 'pre' or 'post', "
                         f"got {padding!r}, {truncating!r}")
    arrays = [np.asarray(s) for s in sequences]
    lengths = [len(a) for a in arrays]
    maxlen = max(lengths, default=0) if maxlen is None else maxlen
    tail = next((a.shape[1:] for a in arrays if len(a)), ())
    out = np.full((len(arrays), maxlen) + tail, value, dtype=dtype)
    for i, a in enumerate(arrays):  # a loop over sequences of different lengths: no array form
        if not len(a):
            continue
        a = a[-maxlen:] if truncating == "pre" else a[:maxlen]
        if padding == "post":
            out[i, :len(a)] = a
        else:
            out[i, maxlen - len(a):] = a
    return out


def lengths_to_mask(lengths, maxlen: int | None = None) -> np.ndarray:
    """A bool (batch, maxlen) mask, True at the first lengths[i] steps of row i."""
    lengths = np.asarray(lengths)
    maxlen = int(lengths.max(initial=0)) if maxlen is None else maxlen
    return np.arange(maxlen)[None, :] < lengths[:, None]
