"""Losses (minidl/losses.py and the per-sample losses of minidl/functional/loss.py): values against
Keras' formulas written out in NumPy, float64 gradient checks, Keras' reduction with sample
weights, lookup by name, and the errors for bad labels and shapes."""
import numpy as np
import pytest

import minidl as dl
import minidl.functional as F
from minidl import losses

EPSILON = 1e-7  # Keras' backend epsilon, which its cross-entropies clip to


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def probabilities(rng, shape):
    return softmax(rng.normal(size=shape))


# --- per-sample values, against the formulas ------------------------------------------------------
def test_sparse_categorical_crossentropy_is_minus_log_of_the_labelled_probability(rng):
    p = probabilities(rng, (4, 3))
    labels = np.array([0, 2, 1, 2])
    expected = -np.log(p[np.arange(4), labels])
    np.testing.assert_allclose(F.sparse_categorical_crossentropy(labels, dl.Tensor(p)).data, expected, rtol=1e-12)
    logits = rng.normal(size=(4, 3)) * 3
    expected = -np.log(softmax(logits)[np.arange(4), labels])
    np.testing.assert_allclose(F.sparse_categorical_crossentropy(labels, dl.Tensor(logits), from_logits=True).data,
                               expected, rtol=1e-12)


def test_sparse_categorical_crossentropy_clips_a_zero_probability_as_keras():
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    loss = F.sparse_categorical_crossentropy(np.array([1, 0]), dl.Tensor(p)).data
    np.testing.assert_allclose(loss, [-np.log(EPSILON), -np.log(0.5)], rtol=1e-12)


def test_sparse_labels_may_be_a_column_or_whole_floats(rng):
    p = dl.Tensor(probabilities(rng, (3, 4)))
    flat = F.sparse_categorical_crossentropy(np.array([3, 0, 1]), p).data
    np.testing.assert_array_equal(F.sparse_categorical_crossentropy(np.array([[3], [0], [1]]), p).data, flat)
    np.testing.assert_array_equal(F.sparse_categorical_crossentropy(np.array([3.0, 0.0, 1.0]), p).data, flat)


def test_categorical_crossentropy_rescales_then_clips_as_keras(rng):
    y_true = np.eye(3)[[2, 0, 1]] * 0.9 + 0.1 / 3  # label smoothing, so every term counts
    scores = rng.uniform(0.1, 2.0, size=(3, 3))   # not normalised: Keras divides by the sum
    p = np.clip(scores / scores.sum(-1, keepdims=True), EPSILON, 1 - EPSILON)
    expected = -(y_true * np.log(p)).sum(-1)
    np.testing.assert_allclose(F.categorical_crossentropy(dl.Tensor(y_true), dl.Tensor(scores)).data, expected,
                               rtol=1e-12)
    logits = rng.normal(size=(3, 3))
    expected = -(y_true * np.log(softmax(logits))).sum(-1)
    np.testing.assert_allclose(F.categorical_crossentropy(dl.Tensor(y_true), dl.Tensor(logits), from_logits=True).data,
                               expected, rtol=1e-12)


def test_binary_crossentropy_is_the_mean_over_the_last_axis(rng):
    y_true = rng.integers(0, 2, size=(4, 3)).astype(float)
    p = rng.uniform(0.05, 0.95, size=(4, 3))
    expected = -(y_true * np.log(p) + (1 - y_true) * np.log(1 - p)).mean(-1)
    np.testing.assert_allclose(F.binary_crossentropy(dl.Tensor(y_true), dl.Tensor(p)).data, expected, rtol=1e-12)
    z = rng.normal(size=(4, 3)) * 2
    expected = -(y_true * np.log(sigmoid(z)) + (1 - y_true) * np.log(1 - sigmoid(z))).mean(-1)
    np.testing.assert_allclose(F.binary_crossentropy(dl.Tensor(y_true), dl.Tensor(z), from_logits=True).data,
                               expected, rtol=1e-10)


def test_binary_crossentropy_from_logits_stays_finite_for_large_logits():
    z = dl.Tensor(np.array([[1000.0, -1000.0]]))
    loss = F.binary_crossentropy(dl.Tensor(np.array([[0.0, 1.0]])), z, from_logits=True).data
    np.testing.assert_allclose(loss, [1000.0])  # each term is |z| for a confident wrong answer


def test_binary_crossentropy_clips_probabilities_of_zero_and_one():
    loss = F.binary_crossentropy(dl.Tensor(np.array([[1.0, 0.0]])), dl.Tensor(np.array([[0.0, 1.0]]))).data
    np.testing.assert_allclose(loss, [-np.log(EPSILON)], rtol=1e-6)


def test_mean_squared_error(rng):
    y_true, y_pred = rng.normal(size=(5, 2, 3)), rng.normal(size=(5, 2, 3))
    np.testing.assert_allclose(F.mean_squared_error(dl.Tensor(y_true), dl.Tensor(y_pred)).data,
                               ((y_true - y_pred) ** 2).mean(-1), rtol=1e-12)


# --- gradients (float64) -----------------------------------------------------------------------------
GRADIENT_CASES = [
    pytest.param(lambda p: F.sparse_categorical_crossentropy(np.array([0, 2, 1]), p), "probabilities",
                 id="sparse_categorical_crossentropy"),
    pytest.param(lambda z: F.sparse_categorical_crossentropy(np.array([0, 2, 1]), z, from_logits=True), "logits",
                 id="sparse_categorical_crossentropy-from_logits"),
    pytest.param(lambda p: F.categorical_crossentropy(np.eye(3)[[1, 1, 0]] * 0.8 + 0.2 / 3, p), "probabilities",
                 id="categorical_crossentropy"),
    pytest.param(lambda z: F.categorical_crossentropy(np.eye(3)[[1, 1, 0]], z, from_logits=True), "logits",
                 id="categorical_crossentropy-from_logits"),
    pytest.param(lambda p: F.binary_crossentropy(np.array([[1.0, 0, 1], [0, 0, 1], [1, 1, 0]]), p), "probabilities",
                 id="binary_crossentropy"),
    pytest.param(lambda z: F.binary_crossentropy(np.array([[1.0, 0, 1], [0, 0, 1], [1, 1, 0]]), z, from_logits=True),
                 "logits", id="binary_crossentropy-from_logits"),
    pytest.param(lambda y: F.mean_squared_error(np.arange(9.0).reshape(3, 3) / 9, y), "logits",
                 id="mean_squared_error"),
]


@pytest.mark.parametrize("loss, inputs", GRADIENT_CASES)
def test_loss_gradient(rng, loss, inputs):
    x = probabilities(rng, (3, 3)) if inputs == "probabilities" else rng.normal(size=(3, 3))
    dl.gradcheck(loss, (x,))


def test_sparse_crossentropy_gradient_is_softmax_minus_onehot_from_logits(rng):
    z = dl.Tensor(rng.normal(size=(2, 4)), requires_grad=True)
    labels = np.array([3, 1])
    F.sum(F.sparse_categorical_crossentropy(labels, z, from_logits=True)).backward()
    np.testing.assert_allclose(z.grad, softmax(z.data) - np.eye(4)[labels], rtol=1e-12)


# --- reduction and sample weights --------------------------------------------------------------------
def test_reduce_loss_is_the_mean_without_weights_and_sum_of_weighted_over_n_with_them():
    per_sample = dl.Tensor(np.array([1.0, 2.0, 3.0, 6.0]))
    assert float(losses.reduce_loss(per_sample).data) == pytest.approx(3.0)
    weights = np.array([1.0, 0.0, 2.0, 0.5])
    # Keras' sum_over_batch_size: a zero weight still counts in N
    assert float(losses.reduce_loss(per_sample, weights).data) == pytest.approx((1 + 0 + 6 + 3) / 4)


def test_sample_weights_broadcast_over_per_step_losses():
    per_step = dl.Tensor(np.array([[1.0, 3.0], [2.0, 4.0]]))  # (batch, steps)
    weighted = losses.reduce_loss(per_step, np.array([2.0, 0.0]))
    assert float(weighted.data) == pytest.approx((2 * 1 + 2 * 3) / 4)


def test_a_loss_object_reduces_and_keeps_its_options(rng):
    logits = rng.normal(size=(3, 4))
    labels = np.array([1, 0, 3])
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    assert loss.name == "sparse_categorical_crossentropy" and loss.options == {"from_logits": True}
    expected = -np.log(softmax(logits)[np.arange(3), labels]).mean()
    assert float(loss(labels, dl.Tensor(logits)).data) == pytest.approx(expected, rel=1e-12)
    weights = np.array([1.0, 2.0, 0.0])
    expected = (-np.log(softmax(logits)[np.arange(3), labels]) * weights).sum() / 3
    assert float(loss(labels, dl.Tensor(logits), weights).data) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("make, name", [
    (losses.CategoricalCrossentropy, "categorical_crossentropy"),
    (losses.BinaryCrossentropy, "binary_crossentropy"),
    (losses.MeanSquaredError, "mean_squared_error")])
def test_keras_class_names_make_losses_of_their_name(make, name):
    assert make().name == name


# --- lookup --------------------------------------------------------------------------------------------
def test_get_by_name_alias_function_or_loss():
    assert losses.get("binary_crossentropy").fn is F.binary_crossentropy
    mse = losses.get("mse")
    assert mse.fn is F.mean_squared_error and mse.name == "mean_squared_error"
    loss = losses.MeanSquaredError()
    assert losses.get(loss) is loss

    def hinge(y_true, y_pred):
        return F.mean(F.relu(1 - y_true * y_pred), axis=-1)

    custom = losses.get(hinge)
    assert custom.name == "hinge"
    value = custom(np.array([[1.0, -1.0]]), dl.Tensor(np.array([[0.5, 0.5]])))
    assert float(value.data) == pytest.approx((0.5 + 1.5) / 2)


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown loss 'hingey'; known: .*binary_crossentropy, .*mse"):
        losses.get("hingey")


def test_a_keras_loss_minidl_lacks_is_named_as_not_supported():
    with pytest.raises(NotImplementedError, match=r"Keras loss 'dice' is not supported by minidl"):
        losses.get("dice")
    with pytest.raises(NotImplementedError, match="ignore_class is not supported"):
        losses.SparseCategoricalCrossentropy(ignore_class=0)
    with pytest.raises(NotImplementedError, match="reduction 'mean_with_sample_weight' is not supported"):
        losses.MeanAbsoluteError(reduction="mean_with_sample_weight")


# --- errors --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("labels, error, message", [
    (np.array([0, 3]), ValueError, r"label 3 is out of range for 3 classes \(expected 0 to 2\)"),
    (np.array([-1, 0]), ValueError, "label -1 is out of range"),
    (np.array([0.5, 1.0]), ValueError, "labels must be whole numbers"),
    (np.array(["a", "b"]), TypeError, "labels must be integers, got dtype <U1"),
    (np.array([0, 1, 2]), ValueError, r"labels of shape \(3,\) do not match predictions of shape \(2, 3\)"),
])
def test_bad_sparse_labels_say_what_is_wrong(labels, error, message):
    with pytest.raises(error, match=message):
        F.sparse_categorical_crossentropy(labels, dl.Tensor(np.full((2, 3), 1 / 3)))


@pytest.mark.parametrize("loss", [F.categorical_crossentropy, F.binary_crossentropy, F.mean_squared_error],
                         ids=lambda loss: loss.__name__)
def test_dense_targets_of_another_shape_are_refused(loss):
    with pytest.raises(ValueError, match=rf"{loss.__name__}: y_true has shape \(2,\), y_pred has shape \(2, 3\)"):
        loss(dl.Tensor(np.array([0.0, 1.0])), dl.Tensor(np.full((2, 3), 0.5)))


# --- Keras itself, when installed ------------------------------------------------------------------------
def test_losses_match_live_keras(rng):
    keras = pytest.importorskip("keras")
    logits = rng.normal(size=(5, 4)).astype("float32")
    p = softmax(logits).astype("float32")
    labels = rng.integers(0, 4, size=5)
    onehot = np.eye(4, dtype="float32")[labels]
    weights = rng.uniform(0, 2, size=5).astype("float32")
    cases = [(keras.losses.SparseCategoricalCrossentropy(), losses.SparseCategoricalCrossentropy(), labels, p),
             (keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              losses.SparseCategoricalCrossentropy(from_logits=True), labels, logits),
             (keras.losses.CategoricalCrossentropy(), losses.CategoricalCrossentropy(), onehot, p),
             (keras.losses.BinaryCrossentropy(from_logits=True), losses.BinaryCrossentropy(from_logits=True),
              onehot, logits),
             (keras.losses.MeanSquaredError(), losses.MeanSquaredError(), onehot, p)]
    for theirs, ours, y_true, y_pred in cases:
        expected = keras.ops.convert_to_numpy(theirs(y_true, y_pred, sample_weight=weights))
        np.testing.assert_allclose(float(ours(y_true, dl.Tensor(y_pred), weights).data), expected, rtol=1e-5,
                                   err_msg=ours.name)


# --- the regression losses and Keras' options ---------------------------------------------------------
def _regression_pair(rng, shape=(3, 4)):
    """Targets and predictions in (0.05, 0.95): valid for every loss below (KL, Poisson, MSLE need
    positives), and never equal, so |e| has no kink inside a finite difference."""
    return rng.uniform(0.05, 0.95, size=shape), rng.uniform(0.05, 0.95, size=shape)


REGRESSION = [  # (minidl per-sample function, keras.losses name, NumPy formula)
    (losses.mean_absolute_error, "mae",
     lambda t, p: np.abs(p - t).mean(-1)),
    (losses.huber, "huber", lambda t, p: np.where(np.abs(p - t) <= 1, 0.5 * (p - t) ** 2, np.abs(p - t) - 0.5).mean(-1)),
    (losses.log_cosh, "log_cosh", lambda t, p: np.log(np.cosh(p - t)).mean(-1)),
    (losses.kl_divergence, "kl_divergence", lambda t, p: (t * np.log(t / p)).sum(-1)),
    (losses.cosine_similarity, "cosine_similarity",
     lambda t, p: -(t * p).sum(-1) / np.linalg.norm(t, axis=-1) / np.linalg.norm(p, axis=-1)),
    (losses.mean_absolute_percentage_error, "mape", lambda t, p: 100 * np.abs((t - p) / t).mean(-1)),
    (losses.mean_squared_logarithmic_error, "msle", lambda t, p: ((np.log1p(p) - np.log1p(t)) ** 2).mean(-1)),
    (losses.hinge, "hinge", lambda t, p: np.maximum(1 - t * p, 0).mean(-1)),
    (losses.squared_hinge, "squared_hinge", lambda t, p: (np.maximum(1 - t * p, 0) ** 2).mean(-1)),
    (losses.poisson, "poisson", lambda t, p: (p - t * np.log(p + EPSILON)).mean(-1)),
]
REGRESSION_IDS = [name for _, name, _ in REGRESSION]


@pytest.mark.parametrize("fn, name, formula", REGRESSION, ids=REGRESSION_IDS)
def test_regression_loss_value_and_gradient(rng, fn, name, formula):
    t, p = _regression_pair(rng)
    np.testing.assert_allclose(fn(dl.Tensor(t), dl.Tensor(p)).data, formula(t, p), rtol=1e-9)
    assert losses.get(name).fn is fn
    dl.gradcheck(lambda p: fn(dl.Tensor(t), p), (p,))


def test_huber_switches_to_linear_beyond_delta():
    t, p = np.array([[0.0, 0.0]]), np.array([[0.5, 3.0]])
    np.testing.assert_allclose(losses.huber(t, dl.Tensor(p), delta=2.0).data, [(0.125 + (6 - 2)) / 2])


def test_label_smoothing_gradient(rng):
    onehot = np.eye(4)[[0, 3, 1]]
    dl.gradcheck(lambda z: F.categorical_crossentropy(onehot, z, from_logits=True, label_smoothing=0.2),
                 (rng.normal(size=(3, 4)),))
    dl.gradcheck(lambda z: F.binary_crossentropy(onehot, z, label_smoothing=0.1), (rng.uniform(0.1, 0.9, (3, 4)),))


def test_binary_crossentropy_takes_labels_of_one_axis_fewer_than_a_one_unit_output(rng):
    labels, p = np.array([1.0, 0.0, 1.0]), rng.uniform(0.1, 0.9, size=(3, 1))
    expected = F.binary_crossentropy(labels[:, None], dl.Tensor(p)).data
    np.testing.assert_array_equal(F.binary_crossentropy(labels, dl.Tensor(p)).data, expected)
    assert expected.shape == (3,)
    dl.gradcheck(lambda p: F.binary_crossentropy(labels, p), (p,))


def test_ctc_gradient_through_its_logits(rng):
    labels = np.array([[1, 2, 0], [3, 0, 0]])
    dl.gradcheck(lambda z: losses.ctc(labels, z), (rng.normal(size=(2, 5, 4)),))


def _keras_cases(keras, rng):
    """(Keras loss object, minidl loss object, y_true, y_pred), the same arguments on both sides."""
    t, p = _regression_pair(rng)
    onehot = np.eye(4)[rng.integers(0, 4, 3)]
    logits = rng.normal(size=(3, 4)) * 2
    binary = rng.integers(0, 2, size=3).astype(float)
    column = rng.uniform(0.05, 0.95, size=(3, 1))
    labels = np.array([[1, 2, 2, 0], [3, 1, 0, 0], [2, 0, 0, 0]])
    frames = rng.normal(size=(3, 7, 4))
    pairs = [("MeanAbsoluteError", {}, t, p), ("Huber", {"delta": 0.3}, t, p), ("LogCosh", {}, t, p),
             ("KLDivergence", {}, t, p), ("CosineSimilarity", {}, t, p), ("MeanAbsolutePercentageError", {}, t, p),
             ("MeanSquaredLogarithmicError", {}, t, p), ("Hinge", {}, onehot, logits), ("SquaredHinge", {}, t, p),
             ("Poisson", {}, t, p),
             ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.2}, onehot, logits),
             ("CategoricalCrossentropy", {"label_smoothing": 0.1}, onehot, softmax(logits)),
             ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, onehot, logits),
             ("BinaryCrossentropy", {}, binary, column), ("BinaryCrossentropy", {"label_smoothing": 0.3}, binary, column),
             ("CTC", {}, labels, frames)]
    return [(getattr(keras.losses, name)(**kwargs), getattr(losses, name)(**kwargs), y, y_hat)
            for name, kwargs, y, y_hat in pairs]


def test_new_losses_match_live_keras(rng):
    keras = pytest.importorskip("keras")
    weights = np.array([0.5, 2.0, 1.0])
    for theirs, ours, y_true, y_pred in _keras_cases(keras, rng):
        y_true, y_pred = y_true.astype("float32"), y_pred.astype("float32")
        if isinstance(ours, losses.CTC):
            y_true = y_true.astype("int32")
        for sample_weight in (None, weights):
            expected = float(keras.ops.convert_to_numpy(theirs(y_true, y_pred, sample_weight=sample_weight)))
            got = float(ours(y_true, dl.Tensor(y_pred), sample_weight).data)
            assert got == pytest.approx(expected, rel=2e-5, abs=1e-6), f"{type(ours).__name__} {ours.options}"
    for name in ("mae", "huber", "log_cosh", "kld", "cosine_similarity", "mape", "msle", "hinge", "squared_hinge",
                 "poisson", "kl_divergence", "ctc", "bce", "MSLE", "Huber", "CTC"):
        keras.losses.get(name)  # every string minidl accepts is one Keras accepts
        losses.get(name)
    assert isinstance(losses.get("Huber"), losses.Huber)


def test_reductions_sum_and_none(rng):
    t, p = _regression_pair(rng)
    per_sample = np.abs(p - t).mean(-1)
    np.testing.assert_allclose(losses.MeanAbsoluteError(reduction="none")(t, dl.Tensor(p)).data, per_sample)
    assert float(losses.MeanAbsoluteError(reduction="sum")(t, dl.Tensor(p)).data) == pytest.approx(per_sample.sum())
