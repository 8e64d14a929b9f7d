"""Turning CTC outputs into label sequences: best-path (greedy) and prefix beam search.

Both take per-frame class log-probabilities ``(batch, time, classes)`` — the input of
``minidl.functional.ctc.ctc_loss`` — and return one list of labels per sample, with the CTC
rule that maps a frame-level path to a labelling: merge repeated classes, then drop blanks
(so "a a - a b b" gives "a a b"). Nothing here is differentiable; Tensors are read as arrays.
"""
from __future__ import annotations

import numpy as np

from minidl.backend import to_numpy
from minidl.tensor import Tensor


def _check(log_probs, input_lengths, blank: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """log_probs as a NumPy (batch, time, classes) array and lengths as (batch,) ints, or an error."""
    log_probs = to_numpy(log_probs.data if isinstance(log_probs, Tensor) else log_probs)
    if log_probs.ndim != 3:
        raise ValueError(f"{where}: log_probs must be (batch, time, classes), got shape "
                         f"{log_probs.shape}; add a batch axis for one utterance (x[None])")
    batch, time, classes = log_probs.shape
    if not 0 <= int(blank) < classes:
        raise ValueError(f"{where}: blank must be a class index in [0, {classes}), got {blank}")
    if input_lengths is None:
        return log_probs, np.full(batch, time, dtype=np.int64)
    if isinstance(input_lengths, Tensor):
        input_lengths = input_lengths.data
    lengths = np.asarray(to_numpy(input_lengths))
    if lengths.shape != (batch,):
        raise ValueError(f"{where}: input_lengths must have shape ({batch},) (one per sample), "
                         f"got shape {lengths.shape}")
    if lengths.dtype.kind not in "iu" and not np.all(lengths == np.round(lengths)):
        raise ValueError(f"{where}: input_lengths must be whole numbers, got {lengths[:5]}")
    lengths = lengths.astype(np.int64)
    if batch and (lengths.min() < 0 or lengths.max() > time):
        bad = int(lengths[(lengths < 0) | (lengths > time)][0])
        raise ValueError(f"{where}: input_lengths must be in [0, {time}] (the time axis of "
                         f"log_probs), got {bad}")
    return log_probs, lengths


def greedy_decode(log_probs, input_lengths=None, blank: int = 0) -> list[list[int]]:
    """Best-path decoding: the most probable class in each frame, repeats merged, blanks dropped.

    The labelling of the single most probable path, π*_t = argmax_k y_t(k). It is not always the
    most probable labelling — that sums over all of a labelling's paths (see beam_search_decode)
    — but it is exact when the network is confident, and costs one argmax.

    Args:
        log_probs: (batch, time, classes) log-probabilities (or any monotone scores), array or
            Tensor, numpy or cupy.
        input_lengths: optional (batch,) ints: frames to read per sample (all when None).
        blank: the blank class index.
    Returns:
        One list of class indices per sample.
    """
    log_probs, lengths = _check(log_probs, input_lengths, blank, "greedy_decode")
    batch, time, _ = log_probs.shape
    path = log_probs.argmax(axis=-1)                                    # (batch, time)
    changed = np.ones_like(path, dtype=bool)
    changed[:, 1:] = path[:, 1:] != path[:, :-1]                        # first frame of each run
    keep = changed & (path != blank) & (np.arange(time)[None, :] < lengths[:, None])
    return [path[b][keep[b]].tolist() for b in range(batch)]


def beam_search_decode(log_probs, beam_width: int = 8, input_lengths=None,
                       blank: int = 0) -> list[list[int]]:
    """Prefix beam search (Graves 2008; Hannun et al. 2014): the most probable labelling, approx.

    Where greedy decoding follows one path, this keeps the ``beam_width`` most probable label
    *prefixes* ℓ, each with two log-probabilities over the frames read so far: p_b(ℓ), of the
    paths that collapse to ℓ and end in a blank, and p_nb(ℓ), of those ending in ℓ's last label.
    Their sum p(ℓ) = p_b ⊕ p_nb (⊕ is log-sum-exp) counts every path of the prefix, which is
    why it can find a labelling whose many paths together beat the single best path.

    At frame t, with y(k) = log_probs[t, k] and ℓ_last the prefix's last label:

        stay, blank:        p_b'(ℓ)  ⊕= p(ℓ) + y(blank)
        stay, repeat:       p_nb'(ℓ) ⊕= p_nb(ℓ) + y(ℓ_last)       (a a -> a)
        extend by k ≠ blank: p_nb'(ℓ+k) ⊕= p(ℓ) + y(k)            if k ≠ ℓ_last
                            p_nb'(ℓ+k) ⊕= p_b(ℓ) + y(k)           if k = ℓ_last (a - a -> a a)

    An extension ℓ+k that is itself in the beam is merged with that prefix's "stay" terms
    before pruning; then the ``beam_width`` prefixes with the largest p' survive. Starting from
    the empty prefix with p_b = 0 (log 1), p_nb = -∞, the result is the surviving prefix of
    largest p after the sample's last frame. With a beam as wide as the number of possible
    prefixes the search is exact; with width 1 it follows one prefix, close to greedy.

    The scores of all beams × classes are computed as one array per frame; Python loops are
    over samples, frames and the beam's few prefixes (for merging and bookkeeping).

    Args:
        log_probs: (batch, time, classes) log-probabilities, array or Tensor, numpy or cupy.
        beam_width: int ≥ 1, prefixes kept after each frame.
        input_lengths: optional (batch,) ints: frames to read per sample (all when None).
        blank: the blank class index.
    Returns:
        One list of class indices per sample.
    """
    if isinstance(beam_width, bool) or not isinstance(beam_width, (int, np.integer)) or beam_width < 1:
        raise ValueError(f"beam_search_decode: beam_width must be an int ≥ 1, got {beam_width!r}")
    log_probs, lengths = _check(log_probs, input_lengths, blank, "beam_search_decode")
    log_probs = log_probs.astype(np.float64, copy=False)  # sums of many small logs: keep precision
    return [list(_prefix_beam_search(log_probs[b, :lengths[b]], int(beam_width), int(blank)))
            for b in range(log_probs.shape[0])]


def _prefix_beam_search(log_probs: np.ndarray, beam_width: int, blank: int) -> tuple[int, ...]:
    """Prefix beam search over one utterance's (time, classes) log-probabilities."""
    classes = log_probs.shape[1]
    negative_inf = -np.inf
    prefixes: list[tuple[int, ...]] = [()]
    p_blank = np.array([0.0])
    p_label = np.array([negative_inf])
    not_blank = np.arange(classes) != blank
    for y in log_probs:
        total = np.logaddexp(p_blank, p_label)                       # p(ℓ), (beam,)
        last = np.array([prefix[-1] if prefix else -1 for prefix in prefixes])
        # Stay: the prefix is unchanged by this frame.
        stay_blank = total + y[blank]
        stay_label = np.where(last >= 0, p_label + y[np.maximum(last, 0)], negative_inf)
        # Extend by each non-blank class k: (beam, classes); a repeated label needs a blank between.
        source = np.where(np.arange(classes)[None, :] == last[:, None], p_blank[:, None], total[:, None])
        extend = np.where(not_blank[None, :], source + y[None, :], negative_inf)
        # Merge extensions that already are beam members (ℓ+k == some ℓ') into their stay terms.
        index = {prefix: i for i, prefix in enumerate(prefixes)}
        for j, prefix in enumerate(prefixes):
            parent = index.get(prefix[:-1]) if prefix else None
            if parent is not None:
                stay_label[j] = np.logaddexp(stay_label[j], extend[parent, prefix[-1]])
                extend[parent, prefix[-1]] = negative_inf
        # Keep the beam_width best of the beam's stays and all extensions (distinct by now).
        scores = np.concatenate([np.logaddexp(stay_blank, stay_label), extend.ravel()])
        count = min(beam_width, int(np.isfinite(scores).sum())) or 1
        best = (np.argpartition(-scores, count - 1)[:count] if count < scores.size
                else np.arange(scores.size))
        best = best[np.argsort(-scores[best], kind="stable")]
        beam = len(prefixes)
        new_prefixes, new_blank, new_label = [], [], []
        for candidate in best:
            if candidate < beam:
                new_prefixes.append(prefixes[candidate])
                new_blank.append(stay_blank[candidate])
                new_label.append(stay_label[candidate])
            else:
                parent, k = divmod(int(candidate) - beam, classes)
                new_prefixes.append(prefixes[parent] + (k,))
                new_blank.append(negative_inf)
                new_label.append(extend[parent, k])
        prefixes, p_blank, p_label = new_prefixes, np.array(new_blank), np.array(new_label)
    best = int(np.argmax(np.logaddexp(p_blank, p_label)))
    return prefixes[best]
