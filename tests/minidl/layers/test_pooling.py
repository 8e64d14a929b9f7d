"""Pooling layers: Keras values (fixtures and live), masks along time, gradients, errors, config."""
import numpy as np
import pytest

import minidl as dl
from minidl.layers import pooling
from minidl.tensor import Tensor
from tests.reference.make_conv_fixtures import CASES, generate, load

POOLING = {name: getattr(pooling, name) for name, _, _, _ in CASES["conv_pooling"].values()
           if hasattr(pooling, name)}
POOL_CASES = [c for c, v in CASES["conv_pooling"].items() if v[0] in POOLING]


def _run(case, x):
    class_name, kwargs, _, _ = CASES["conv_pooling"][case]
    return POOLING[class_name](**kwargs)(Tensor(x)).numpy()


@pytest.mark.parametrize("case", POOL_CASES)
def test_pooling_layer_matches_keras_fixture(case):
    data = load("conv_pooling")[case]
    np.testing.assert_allclose(_run(case, data["x"]), data["y"], atol=1e-6, rtol=1e-6)


def test_pooling_layers_match_keras_live():
    pytest.importorskip("keras")
    live = generate("conv_pooling")
    for case in POOL_CASES:
        np.testing.assert_allclose(_run(case, live[f"{case}/x"]), live[f"{case}/y"], atol=1e-6, rtol=1e-6,
                                   err_msg=case)


def test_global_average_pooling1d_with_mask_matches_keras_live(rng):
    keras = pytest.importorskip("keras")
    x = rng.normal(size=(3, 5, 2)).astype("float32")
    mask = np.arange(5)[None] < np.array([5, 2, 1])[:, None]
    expected = keras.ops.convert_to_numpy(keras.layers.GlobalAveragePooling1D()(x, mask=mask))
    y = pooling.GlobalAveragePooling1D()(Tensor(x), mask=mask)
    np.testing.assert_allclose(y.numpy(), expected, atol=1e-6)
    assert y.mask is None


@pytest.mark.parametrize("layer, shape", [
    pytest.param(pooling.MaxPooling2D(3, 2, "same", dtype="float64"), (2, 5, 5, 2), id="MaxPooling2D-same"),
    pytest.param(pooling.AveragePooling2D((2, 3), dtype="float64"), (1, 4, 6, 2), id="AveragePooling2D-2x3"),
    pytest.param(pooling.MaxPooling1D(dtype="float64"), (2, 5, 2), id="MaxPooling1D"),
    pytest.param(pooling.AveragePooling1D(3, 2, "same", dtype="float64"), (2, 6, 2), id="AveragePooling1D-same"),
    pytest.param(pooling.GlobalMaxPooling2D(dtype="float64"), (2, 3, 2, 2), id="GlobalMaxPooling2D"),
    pytest.param(pooling.GlobalAveragePooling1D(keepdims=True, dtype="float64"), (1, 4, 3),
                 id="GlobalAveragePooling1D-keepdims")])
def test_pooling_layer_gradient(rng, layer, shape):
    dl.gradcheck(layer, (rng.normal(size=shape),))


@pytest.mark.parametrize("layer, stride", [(pooling.MaxPooling1D(2), 2), (pooling.AveragePooling1D(3, 2, "same"), 2),
                                           (pooling.MaxPooling1D(3, 3, "same"), 3), (pooling.MaxPooling1D(2, 1), 1)])
def test_pooling_along_time_passes_the_mask(layer, stride):
    lengths = np.array([9, 4, 1])
    x = Tensor(np.zeros((3, 9, 2), "float32"))
    x.mask = np.arange(9)[None] < lengths[:, None]
    y = layer(x)
    expected = np.arange(y.shape[1])[None] < np.minimum(-(-lengths // stride), y.shape[1])[:, None]
    np.testing.assert_array_equal(y.mask, expected)


def test_pooling_layer_errors():
    with pytest.raises(ValueError, match=r"MaxPooling2D 'p' expects a 4-D input .* got shape \(2, 4, 4\)"):
        pooling.MaxPooling2D(name="p")(Tensor(np.zeros((2, 4, 4), "float32")))
    with pytest.raises(ValueError, match=r"AveragePooling1D 'q': strides must be positive, got 0"):
        pooling.AveragePooling1D(2, 0, name="q")
    with pytest.raises(ValueError, match=r"padding must be 'valid' or 'same', got 'causal'"):
        pooling.MaxPooling1D(padding="causal")
    with pytest.raises(ValueError, match=r"only data_format='channels_last'"):
        pooling.GlobalAveragePooling2D(data_format="channels_first")


@pytest.mark.parametrize("layer", [pooling.MaxPooling2D((2, 3), padding="same"), pooling.AveragePooling1D(3, 1),
                                   pooling.GlobalMaxPooling1D(keepdims=True), pooling.GlobalAveragePooling2D()])
def test_pooling_get_config_rebuilds_the_layer(layer):
    config = layer.get_config()
    assert type(layer)(**config).get_config() == config
