"""greedy_decode and beam_search_decode: the collapse rule, lengths, beam 1 versus greedy, and
prefix beam search finding the labelling whose paths together beat the single best path."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import minidl.functional as F
from minidl.decoding import beam_search_decode, greedy_decode
from minidl.functional.ctc import ctc_loss
from minidl.tensor import Tensor


def one_hot_log_probs(paths, classes, peak=0.97):
    """Log-probabilities whose best path is each of ``paths``, (batch, time, classes)."""
    paths = np.asarray(paths)
    probs = np.full(paths.shape + (classes,), (1 - peak) / (classes - 1))
    np.put_along_axis(probs, paths[..., None], peak, axis=-1)
    return np.log(probs)


def labelling_log_prob(log_probs, labels):
    """log p(labels | x) for one utterance, by the CTC forward pass."""
    padded = np.array([list(labels) or [1]])
    loss = ctc_loss(Tensor(log_probs[None]), padded, [len(log_probs)], [len(labels)], reduction="none")
    return -loss.numpy()[0]


def test_greedy_merges_repeats_then_drops_blanks():
    log_probs = one_hot_log_probs([[1, 1, 0, 1, 2, 2, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0],
                                   [3, 0, 3, 3, 1, 0, 1, 2]], classes=4)
    assert greedy_decode(log_probs) == [[1, 1, 2], [], [3, 3, 1, 1, 2]]


def test_greedy_reads_only_input_lengths_frames():
    log_probs = one_hot_log_probs([[1, 0, 2, 2, 3], [2, 2, 1, 0, 3]], classes=4)
    assert greedy_decode(log_probs, input_lengths=[3, 0]) == [[1, 2], []]
    assert beam_search_decode(log_probs, input_lengths=[3, 0]) == [[1, 2], []]


def test_greedy_with_blank_last_and_tensor_input():
    log_probs = Tensor(one_hot_log_probs([[0, 0, 3, 0, 2, 3, 3]], classes=4))
    assert greedy_decode(log_probs, blank=3) == [[0, 0, 2]]
    assert beam_search_decode(log_probs, blank=3) == [[0, 0, 2]]


@pytest.mark.parametrize("seed", range(5))
def test_beam_width_one_equals_greedy_on_peaked_distributions(seed):
    rng = np.random.default_rng(seed)
    logits = 8.0 * rng.normal(size=(4, 30, 6))
    log_probs = F.log_softmax(Tensor(logits)).numpy()
    lengths = rng.integers(0, 31, size=4)
    assert beam_search_decode(log_probs, beam_width=1, input_lengths=lengths) == \
        greedy_decode(log_probs, input_lengths=lengths)


def test_beam_search_beats_greedy_where_many_paths_outweigh_the_best_one():
    # Two frames, p(blank) = 0.6, p(a) = 0.4 in each. The best path is "- -" (0.36), so greedy
    # says "", but "a" has three paths, "a a", "a -", "- a": 0.16 + 0.24 + 0.24 = 0.64.
    log_probs = np.log(np.array([[[0.6, 0.4], [0.6, 0.4]]]))
    assert greedy_decode(log_probs) == [[]]
    assert beam_search_decode(log_probs, beam_width=2) == [[1]]
    np.testing.assert_allclose(np.exp(labelling_log_prob(log_probs[0], [1])), 0.64)
    np.testing.assert_allclose(np.exp(labelling_log_prob(log_probs[0], [])), 0.36)


def test_beam_search_beats_greedy_on_a_longer_example():
    # Frames alternate between a confident label and a blank-leaning frame that spreads its
    # mass over two labels, so the best path drops a label that most of the mass carries.
    frame_label = [0.05, 0.9, 0.025, 0.025]
    frame_split = [0.4, 0.3, 0.3, 0.0001]
    probs = np.array([frame_label, frame_split, frame_split, [0.05, 0.025, 0.025, 0.9]])
    log_probs = np.log(probs / probs.sum(axis=1, keepdims=True))[None]
    greedy = greedy_decode(log_probs)[0]
    beam = beam_search_decode(log_probs, beam_width=8)[0]
    assert greedy != beam
    assert labelling_log_prob(log_probs[0], beam) > labelling_log_prob(log_probs[0], greedy)


@pytest.mark.parametrize("seed", range(4))
def test_wide_beam_finds_the_most_probable_labelling(seed):
    """With a beam wider than the number of prefixes the search is exact: compare with
    brute force over every labelling of up to 4 labels."""
    rng = np.random.default_rng(seed)
    time, classes = 4, 3
    log_probs = F.log_softmax(Tensor(rng.normal(scale=1.5, size=(time, classes)))).numpy()
    labellings = [()] + [labels for n in range(1, time + 1)
                         for labels in itertools.product(range(1, classes), repeat=n)]
    scores = [labelling_log_prob(log_probs, labels) for labels in labellings]
    best = list(labellings[int(np.argmax(scores))])
    assert beam_search_decode(log_probs[None], beam_width=64) == [best]


def test_decoders_name_bad_arguments():
    log_probs = np.zeros((2, 5, 3))
    with pytest.raises(ValueError, match=r"log_probs must be \(batch, time, classes\), got shape \(5, 3\)"):
        greedy_decode(log_probs[0])
    with pytest.raises(ValueError, match=r"input_lengths must be in \[0, 5\] .*got 6"):
        greedy_decode(log_probs, input_lengths=[6, 2])
    with pytest.raises(ValueError, match=r"input_lengths must have shape \(2,\) .*got shape \(3,\)"):
        beam_search_decode(log_probs, input_lengths=[1, 2, 3])
    with pytest.raises(ValueError, match=r"beam_width must be an int ≥ 1, got 0"):
        beam_search_decode(log_probs, beam_width=0)
    with pytest.raises(ValueError, match=r"blank must be a class index in \[0, 3\), got 3"):
        greedy_decode(log_probs, blank=3)


@pytest.mark.cupy
def test_decoders_take_cupy_arrays():
    import cupy
    log_probs = one_hot_log_probs([[1, 1, 0, 2]], classes=3)
    assert greedy_decode(cupy.asarray(log_probs)) == [[1, 2]]
    assert beam_search_decode(cupy.asarray(log_probs)) == [[1, 2]]
