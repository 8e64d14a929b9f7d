"""Stateful metric objects (minidl/metric_classes.py) against Keras' live, batch after batch
with sample weights, then reset; and how compile takes them."""
import numpy as np
import pytest

import minidl as dl
from minidl import layers, metrics


def _batches(rng, kind):
    """Two batches of (y_true, y_pred, sample_weight) for a kind of metric."""
    out = []
    for n in (6, 5):
        weight = rng.uniform(0.2, 2.0, size=n)
        scores = rng.random((n, 4))
        if kind == "sparse":
            out.append((rng.integers(0, 4, size=n), scores / scores.sum(-1, keepdims=True), weight))
        elif kind == "onehot":
            out.append((np.eye(4)[rng.integers(0, 4, size=n)], scores, weight))
        elif kind == "labels":
            out.append((rng.integers(0, 3, size=(n, 1)), rng.integers(0, 3, size=(n, 1)), weight))
        elif kind == "binary":
            out.append((rng.integers(0, 2, size=(n, 3)), rng.random((n, 3)), weight))
        else:  # regression
            out.append((rng.normal(size=(n, 3)), rng.normal(size=(n, 3)), weight))
    return out


CASES = [  # (class name, kwargs, kind of data)
    ("Accuracy", {}, "labels"), ("SparseCategoricalAccuracy", {}, "sparse"),
    ("SparseTopKCategoricalAccuracy", {"k": 2}, "sparse"), ("TopKCategoricalAccuracy", {"k": 2}, "onehot"),
    ("MeanSquaredError", {}, "regression"), ("MeanAbsoluteError", {}, "regression"),
    ("Precision", {}, "binary"), ("Recall", {}, "binary"), ("Precision", {"thresholds": [0.3, 0.7]}, "binary"),
    ("Recall", {"class_id": 1}, "binary"),
    ("AUC", {}, "binary"), ("AUC", {"curve": "PR"}, "binary"), ("AUC", {"num_thresholds": 50, "summation_method": "minoring"}, "binary"),
    ("AUC", {"curve": "PR", "summation_method": "majoring"}, "binary"),
    ("F1Score", {}, "onehot"), ("F1Score", {"average": "macro", "threshold": 0.5}, "onehot"),
    ("F1Score", {"average": "micro"}, "onehot"), ("F1Score", {"average": "weighted", "threshold": 0.4}, "onehot"),
]


@pytest.mark.parametrize("class_name, kwargs, kind", CASES, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(CASES)])
def test_metric_objects_match_keras_live(rng, class_name, kwargs, kind):
    keras = pytest.importorskip("keras")
    theirs, ours = getattr(keras.metrics, class_name)(**kwargs), getattr(metrics, class_name)(**kwargs)
    for y_true, y_pred, weight in _batches(rng, kind):
        for metric in (theirs, ours):
            metric.update_state(y_true.astype("float32"), y_pred.astype("float32"), sample_weight=weight)
        np.testing.assert_allclose(ours.result(), keras.ops.convert_to_numpy(theirs.result()), rtol=2e-5, atol=1e-6)
    ours.reset_state()
    theirs.reset_state()
    y_true, y_pred, _ = _batches(rng, kind)[0]
    np.testing.assert_allclose(ours(y_true, y_pred), keras.ops.convert_to_numpy(theirs(y_true, y_pred)),
                               rtol=2e-5, atol=1e-6)


def test_mean_is_the_weighted_mean_of_everything_seen_as_keras_live():
    keras = pytest.importorskip("keras")
    theirs, ours = keras.metrics.Mean(), metrics.Mean()
    for values, weight in (([1.0, 3.0], [1.0, 0.5]), ([[2.0, 4.0]], None)):
        theirs.update_state(np.array(values), sample_weight=weight)
        ours.update_state(np.array(values), sample_weight=weight)
    assert ours.result() == pytest.approx(float(theirs.result())) == pytest.approx((1 + 1.5 + 3) / 2.5)  # [[2, 4]] is one sample of mean 3


def test_a_running_mean_object_works_in_compile(rng):
    model = dl.Sequential([layers.Input((3,)), layers.Dense(4, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", metrics=[metrics.SparseCategoricalAccuracy(name="acc")])
    x, y = rng.normal(size=(10, 3)).astype("float32"), rng.integers(0, 4, 10)
    logs = model.evaluate(x, y, batch_size=10, return_dict=True, verbose=0)
    assert logs["acc"] == pytest.approx(metrics.sparse_categorical_accuracy(y, model.predict(x, verbose=0)))


def test_compile_refuses_metrics_that_are_not_means():
    with pytest.raises(NotImplementedError, match="the metric 'auc' is not supported in compile"):
        metrics.get("auc")
    with pytest.raises(NotImplementedError, match="the metric object Precision is not supported in compile"):
        metrics.get(metrics.Precision())
    assert metrics.get("sparse_top_k_categorical_accuracy").__name__ == "sparse_top_k_categorical_accuracy"


def test_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"predictions must be probabilities in \[0, 1\]"):
        metrics.Precision().update_state(np.array([1, 0]), np.array([1.5, 0.2]))
    with pytest.raises(NotImplementedError, match="top_k is not supported"):
        metrics.Recall(top_k=2)
    with pytest.raises(NotImplementedError, match="multi_label"):
        metrics.AUC(multi_label=True)
