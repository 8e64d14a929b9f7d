import numpy as np
import pytest

from minidl import data, utils


def test_to_categorical():
    np.testing.assert_array_equal(utils.to_categorical([0, 2, 1], 3), np.eye(3)[[0, 2, 1]])
    assert utils.to_categorical(np.array([[1], [0]])).shape == (2, 2)
    with pytest.raises(ValueError, match="label 3 is out of range for 3 classes"):
        utils.to_categorical([0, 3], 3)


def test_pad_sequences_follows_keras_defaults():
    seqs = [[1, 2, 3], [4], []]
    np.testing.assert_array_equal(data.pad_sequences(seqs, dtype="int32"), [[1, 2, 3], [0, 0, 4], [0, 0, 0]])
    np.testing.assert_array_equal(data.pad_sequences(seqs, maxlen=2, padding="post", truncating="post",
                                                     dtype="int32"), [[1, 2], [4, 0], [0, 0]])
    frames = [np.ones((2, 5)), np.ones((4, 5))]
    assert data.pad_sequences(frames, padding="post").shape == (2, 4, 5)


def test_lengths_to_mask():
    np.testing.assert_array_equal(data.lengths_to_mask([2, 0, 3]),
                                  [[True, True, False], [False, False, False], [True, True, True]])


def test_batch_indices_cover_every_sample_once():
    batches = list(data.batch_indices(10, 4, shuffle=True))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
