"""BatchNormalization, LayerNormalization, Normalization: Keras values, moving statistics, gradients."""
import numpy as np
import pytest

import minidl as dl
from minidl.layers.normalization import BatchNormalization, LayerNormalization, Normalization
from minidl.tensor import Tensor
from tests.reference.make_conv_fixtures import CASES, generate, load

LAYERS = {"BatchNormalization": BatchNormalization, "LayerNormalization": LayerNormalization}


def _check(case, data):
    class_name, kwargs, _, training = CASES["conv_normalization"][case]
    layer = LAYERS[class_name](**kwargs)
    layer(Tensor(data["x"]))
    layer.set_weights([data[f"w{i}"] for i in range(len(layer.weights))])
    y = layer(Tensor(data["x"]), training=training)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), data["y"], atol=1e-5, rtol=1e-5, err_msg=case)
    if training:  # the moving statistics after one step
        for i, weight in enumerate(layer.get_weights()):
            np.testing.assert_allclose(weight, data[f"a{i}"], atol=1e-6, rtol=1e-5, err_msg=f"{case} weight {i}")


@pytest.mark.parametrize("case", sorted(CASES["conv_normalization"]))
def test_matches_keras_fixture(case):
    _check(case, load("conv_normalization")[case])


def test_matches_keras_live():
    pytest.importorskip("keras")
    live = generate("conv_normalization")
    for case in CASES["conv_normalization"]:
        _check(case, {k.split("/")[1]: v for k, v in live.items() if k.startswith(case + "/")})


def test_batch_normalization_weights_in_keras_order_and_roles():
    layer = BatchNormalization()
    layer(Tensor(np.zeros((2, 3), "float32")))
    assert [w.name.split("/")[1] for w in layer.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert [w.name.split("/")[1] for w in layer.trainable_weights] == ["gamma", "beta"]
    assert layer.momentum == 0.99 and layer.epsilon == 1e-3


def test_batch_normalization_inference_uses_moving_statistics_and_training_updates_them(rng):
    layer = BatchNormalization(momentum=0.5, center=False, scale=False)
    x = (rng.normal(size=(64, 2)) * [2, 3] + [1, -1]).astype("float32")
    y = layer(Tensor(x))                       # inference: moving mean 0, variance 1
    np.testing.assert_allclose(y.numpy(), x / np.sqrt(1 + 1e-3), rtol=1e-6)
    layer(Tensor(x), training=True)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.5 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.5 + 0.5 * x.var(0), rtol=1e-5)
    assert layer.moving_mean.grad is None and layer.moving_mean.dtype == np.float32


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 3)], ids=["4x3", "2x3x2x3"])
@pytest.mark.parametrize("training", [False, True],
                         ids=["BatchNormalization-inference", "BatchNormalization-training"])
def test_batch_normalization_layer_gradient(rng, training, shape):
    dl.set_floatx("float64")
    layer = BatchNormalization(momentum=0.0)
    layer(Tensor(np.zeros(shape)))
    layer.set_weights([rng.normal(size=3), rng.normal(size=3), rng.normal(size=3), rng.uniform(0.5, 2, 3)])

    def f(x, gamma, beta):
        layer.gamma, layer.beta = gamma, beta
        return layer(x, training=training)
    dl.gradcheck(f, (rng.normal(size=shape), rng.normal(size=3), rng.normal(size=3)))


def test_layer_normalization_layer_gradient(rng):
    layer = LayerNormalization(axis=(1, 2), dtype="float64")
    layer(Tensor(np.zeros((2, 3, 2))))

    def f(x, gamma, beta):
        layer.gamma, layer.beta = gamma, beta
        return layer(x)
    dl.gradcheck(f, (rng.normal(size=(2, 3, 2)), rng.normal(size=(3, 2)), rng.normal(size=(3, 2))))


def test_normalization_adapt_matches_keras_live(rng):
    keras = pytest.importorskip("keras")
    data = (rng.normal(size=(50, 4, 3)) * [1, 2, 3] + [0, 5, -5]).astype("float32")
    for kwargs in (dict(), dict(axis=(1, 2)), dict(axis=None), dict(invert=True)):
        reference = keras.layers.Normalization(**kwargs)
        reference.adapt(data)
        layer = Normalization(**kwargs)
        layer.adapt(data)
        x = data[:5]
        np.testing.assert_allclose(layer(Tensor(x)).numpy(), keras.ops.convert_to_numpy(reference(x)),
                                   atol=1e-5, rtol=1e-5, err_msg=str(kwargs))
        fresh = Normalization(**kwargs)
        fresh(Tensor(x))
        fresh.set_weights(reference.get_weights())
        np.testing.assert_allclose(fresh(Tensor(x)).numpy(), layer(Tensor(x)).numpy(), atol=1e-5, rtol=1e-5)


def test_normalization_adapt_and_given_statistics(rng):
    data = rng.normal(size=(100, 3)) * [1, 2, 4] + [1, 2, 3]
    layer = Normalization()
    layer.adapt([data[:60], data[60:]])
    y = layer(Tensor(data.astype("float32"))).numpy()
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(0), 1, atol=1e-5)
    fixed = Normalization(mean=[1.0, 2.0, 3.0], variance=[1.0, 4.0, 16.0])
    np.testing.assert_allclose(fixed(Tensor(np.array([[2.0, 4.0, 7.0]], "float32"))).numpy(), [[1, 1, 1]])
    assert fixed.weights == []
    dl.gradcheck(Normalization(mean=0.5, variance=4.0, dtype="float64"), (rng.normal(size=(2, 3)),))


def test_normalization_errors():
    with pytest.raises(ValueError, match=r"BatchNormalization 'b' was built for 3 features on axis -1, "
                                         r"got an input of shape \(2, 4\)"):
        layer = BatchNormalization(name="b")
        layer(Tensor(np.zeros((2, 3), "float32")))
        layer(Tensor(np.zeros((2, 4), "float32")))
    with pytest.raises(ValueError, match=r"LayerNormalization 'l': axis 2 is out of range for a 2-D input"):
        LayerNormalization(axis=2, name="l")(Tensor(np.zeros((2, 3), "float32")))
    with pytest.raises(ValueError, match=r"give both mean and variance"):
        Normalization(mean=1.0)
    with pytest.raises(ValueError, match=r"Normalization 'n' keeps statistics of shape \(3,\), got data of shape"):
        layer = Normalization(name="n")
        layer(Tensor(np.zeros((2, 3), "float32")))
        layer.adapt(np.zeros((5, 4)))


@pytest.mark.parametrize("layer", [BatchNormalization(axis=1, momentum=0.9, center=False),
                                   LayerNormalization(axis=(1, 2), epsilon=1e-5),
                                   Normalization(axis=None, mean=1.0, variance=2.0, invert=True)])
def test_get_config_rebuilds_the_layer(layer):
    config = layer.get_config()
    assert type(layer)(**config).get_config() == config


def _ragged(rng, batch=4, steps=6, features=3):
    """x with padding steps full of large values, and the (batch, steps) mask that hides them."""
    lengths = np.array([6, 2, 4, 1])[:batch]
    mask = np.arange(steps)[None, :] < lengths[:, None]
    x = rng.normal(size=(batch, steps, features)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -2.0]
    x[~mask] = 1000.0
    return x, mask


def test_batch_normalization_statistics_leave_masked_steps_out(rng):
    x, mask = _ragged(rng)
    layer = BatchNormalization(momentum=0.0, center=False, scale=False, dtype="float64")
    y = layer(Tensor(x), training=True, mask=mask)
    valid = x[mask]                                   # (valid steps, features)
    np.testing.assert_allclose(layer.moving_mean.numpy(), valid.mean(0), rtol=1e-6)
    np.testing.assert_allclose(layer.moving_variance.numpy(), valid.var(0), rtol=1e-6)
    np.testing.assert_allclose(y.numpy()[mask], (valid - valid.mean(0)) / np.sqrt(valid.var(0) + 1e-3),
                               rtol=1e-6)
    assert y.mask is mask


@pytest.mark.parametrize("shape", [(4, 6, 3), (4, 6, 2, 3)],
                         ids=["BatchNormalization-masked-4x6x3", "BatchNormalization-masked-4x6x2x3"])
def test_batch_normalization_masked_gradient(rng, shape):
    dl.set_floatx("float64")
    x, mask = _ragged(rng)
    x = np.broadcast_to(x[:, :, None, :], shape).copy() if len(shape) == 4 else x
    mask = np.broadcast_to(mask[:, :, None], shape[:-1]).copy() if len(shape) == 4 else mask
    mask[3] = False  # a sequence with no valid step at all
    layer = BatchNormalization()
    layer(Tensor(np.zeros(shape)))

    def f(x, gamma, beta):
        layer.gamma, layer.beta = gamma, beta
        return layer(x, training=True, mask=mask)
    dl.gradcheck(f, (rng.normal(size=shape), rng.normal(size=3), rng.normal(size=3)))


def test_batch_normalization_masked_matches_keras_live(rng):
    keras = pytest.importorskip("keras")
    x, mask = _ragged(rng)
    x = x.astype("float32")
    theirs = keras.layers.BatchNormalization(momentum=0.9)
    theirs.build(x.shape)
    weights = [rng.normal(size=3).astype("float32"), rng.normal(size=3).astype("float32"),
               rng.normal(size=3).astype("float32"), rng.uniform(0.5, 2, 3).astype("float32")]
    theirs.set_weights(weights)
    expected = keras.ops.convert_to_numpy(theirs(x, training=True, mask=mask))
    ours = BatchNormalization(momentum=0.9)
    ours(Tensor(x))
    ours.set_weights(weights)
    y = ours(Tensor(x), training=True, mask=mask)
    np.testing.assert_allclose(y.numpy(), expected, atol=1e-5, rtol=1e-5)
    for got, want in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=1e-5)


def test_batch_normalization_rejects_a_mask_of_the_wrong_shape(rng):
    layer = BatchNormalization()
    with pytest.raises(ValueError, match=r"expected a mask of shape \(2, 3\).*got \(2, 4\)"):
        layer(Tensor(np.zeros((2, 3, 5), "float32")), training=True, mask=np.ones((2, 4), bool))
