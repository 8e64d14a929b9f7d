"""Metrics: accuracies as Keras computes them, confusion matrix, precision/recall, edit distance."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from minidl import metrics
from minidl.tensor import Tensor


def test_sparse_categorical_accuracy_by_hand():
    y_true = np.array([0, 2, 1, 1])
    y_pred = np.array([[0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.1, 0.7, 0.2]])
    assert metrics.sparse_categorical_accuracy(y_true, y_pred) == 0.75
    assert metrics.sparse_categorical_accuracy(y_true[:, None], y_pred) == 0.75
    assert metrics.accuracy(y_true, y_pred) == 0.75
    assert metrics.accuracy(Tensor(y_true), Tensor(y_pred.astype(np.float32))) == 0.75
    assert metrics.accuracy(y_true, np.array([0, 2, 0, 0])) == 0.5   # labels against labels
    weighted = metrics.sparse_categorical_accuracy(y_true, y_pred, sample_weight=[1, 1, 2, 0])
    assert weighted == pytest.approx(0.5)


def test_categorical_and_binary_accuracy_by_hand():
    one_hot = np.eye(3)[[0, 2, 1]]
    scores = np.array([[0.5, 0.4, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])
    assert metrics.categorical_accuracy(one_hot, scores) == pytest.approx(2 / 3)
    assert metrics.accuracy(one_hot, scores) == pytest.approx(2 / 3)
    y = np.array([[1.0], [0.0], [1.0], [0.0]])
    p = np.array([[0.7], [0.2], [0.4], [0.6]])
    assert metrics.binary_accuracy(y, p) == 0.5
    assert metrics.binary_accuracy(y, p, threshold=0.3) == 0.75
    assert metrics.binary_accuracy(y, p, threshold=0.65) == 0.75
    assert metrics.accuracy(y[:, 0], p) == 0.5


def test_accuracies_match_keras(rng):
    keras = pytest.importorskip("keras")
    labels = rng.integers(0, 5, size=50)
    scores = rng.random((50, 5)).astype(np.float32)
    one_hot = np.eye(5, dtype=np.float32)[rng.integers(0, 5, size=50)]
    binary = rng.integers(0, 2, size=(50, 3)).astype(np.float32)
    probabilities = rng.random((50, 3)).astype(np.float32)
    weight = rng.random(50)
    cases = [
        (metrics.sparse_categorical_accuracy, keras.metrics.SparseCategoricalAccuracy(), labels, scores),
        (metrics.categorical_accuracy, keras.metrics.CategoricalAccuracy(), one_hot, scores),
        (metrics.binary_accuracy, keras.metrics.BinaryAccuracy(), binary, probabilities),
    ]
    for ours, theirs, y_true, y_pred in cases:
        theirs.update_state(y_true, y_pred)
        assert ours(y_true, y_pred) == pytest.approx(float(theirs.result()), abs=1e-6)
        theirs.reset_state()
        theirs.update_state(y_true, y_pred, sample_weight=weight)
        assert ours(y_true, y_pred, sample_weight=weight) == pytest.approx(float(theirs.result()), abs=1e-6)


def test_confusion_matrix_and_precision_recall_by_hand():
    y_true = [0, 0, 1, 1, 1, 2]
    y_pred = [0, 1, 1, 1, 0, 1]
    expected = np.array([[1, 1, 0], [1, 2, 0], [0, 1, 0]])
    np.testing.assert_array_equal(metrics.confusion_matrix(y_true, y_pred), expected)
    np.testing.assert_array_equal(metrics.confusion_matrix(y_true, y_pred, num_classes=4)[:3, :3], expected)
    scores = np.eye(3)[y_pred] * 0.9
    np.testing.assert_array_equal(metrics.confusion_matrix(y_true, scores), expected)
    precision, recall, f1 = metrics.precision_recall(y_true, y_pred)
    np.testing.assert_allclose(precision, [1 / 2, 2 / 4, 0.0])
    np.testing.assert_allclose(recall, [1 / 2, 2 / 3, 0.0])
    np.testing.assert_allclose(f1, [0.5, 2 * 0.5 * (2 / 3) / (0.5 + 2 / 3), 0.0])


def test_confusion_matrix_matches_a_loop(rng):
    y_true = rng.integers(0, 7, 500)
    y_pred = rng.integers(0, 7, 500)
    expected = np.zeros((7, 7), int)
    for t, p in zip(y_true, y_pred):
        expected[t, p] += 1
    np.testing.assert_array_equal(metrics.confusion_matrix(y_true, y_pred, 7), expected)


def test_label_errors_name_the_label_and_classes():
    with pytest.raises(ValueError, match=r"y_true has label 5, outside \[0, 3\)"):
        metrics.confusion_matrix([0, 5], [0, 1], num_classes=3)
    with pytest.raises(ValueError, match=r"y_pred has label -1"):
        metrics.confusion_matrix([0, 1], [0, -1])
    with pytest.raises(ValueError, match=r"shape \(3,\) .* shape \(2,\)"):
        metrics.confusion_matrix([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="sparse_categorical_accuracy"):
        metrics.sparse_categorical_accuracy([0, 1], np.zeros((3, 2)))


def _levenshtein(a, b):
    """Textbook DP, one cell at a time (the reference)."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return d[-1][-1]


@given(st.text(alphabet="abc ", max_size=12), st.text(alphabet="abc ", max_size=12))
def test_edit_distance_matches_textbook_dp(a, b):
    assert metrics.edit_distance(a, b) == _levenshtein(a, b)


def test_edit_distance_examples():
    assert metrics.edit_distance("kitten", "sitting") == 3
    assert metrics.edit_distance("", "abc") == 3
    assert metrics.edit_distance("abc", "") == 3
    assert metrics.edit_distance(["one", "two"], ["one", "two"]) == 0
    assert metrics.edit_distance([1, 2, 3], [1, 3]) == 1


def test_word_and_character_error_rates():
    refs = ["one two three", "four five"]
    hyps = ["one too three", "four five six"]
    assert metrics.word_error_rate(refs, hyps) == pytest.approx(2 / 5)   # 1 substitution + 1 insertion
    assert metrics.word_error_rate("a b c d", "a c d") == 0.25
    assert metrics.word_error_rate([["7", "3"]], [["7", "8"]]) == 0.5
    assert metrics.character_error_rate(["abcd"], ["abed"]) == 0.25
    assert metrics.character_error_rate("one two", "one tw") == pytest.approx(1 / 7)
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        metrics.word_error_rate(refs, hyps[:1])
    with pytest.raises(ValueError, match="no tokens"):
        metrics.word_error_rate([""], ["a"])


def test_get_and_resolve():
    assert metrics.get("ACC") is metrics.accuracy
    assert metrics.get("sparse_categorical_accuracy") is metrics.sparse_categorical_accuracy
    assert metrics.get(metrics.binary_accuracy) is metrics.binary_accuracy
    with pytest.raises(ValueError, match=r"unknown metric 'f2'.*sparse_categorical_accuracy"):
        metrics.get("f2")
    assert metrics.resolve("accuracy", "sparse_categorical_crossentropy") == (
        metrics.sparse_categorical_accuracy, "accuracy")
    assert metrics.resolve("acc", "categorical_crossentropy") == (metrics.categorical_accuracy, "acc")
    assert metrics.resolve("accuracy", "binary_crossentropy") == (metrics.binary_accuracy, "accuracy")
    assert metrics.resolve("accuracy", "mse") == (metrics.accuracy, "accuracy")
    assert metrics.resolve("mae", "mse") == (metrics.mean_absolute_error, "mae")

    def my_metric(y_true, y_pred):
        return 0.0
    assert metrics.resolve(my_metric) == (my_metric, "my_metric")
