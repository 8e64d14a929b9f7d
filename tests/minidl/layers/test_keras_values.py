"""Weightless layers against Keras: Activation, Flatten, Reshape, Dropout, InputLayer (core.py) and
ZeroPadding1D/2D (conv.py).

Each compares with tests/reference/fixtures/core_layers.npz always, and with Keras itself (torch
backend) when it is installed. Dropout in training cannot draw Keras' mask (Keras draws from
torch's generator, minidl from its own), so its training output is checked twice: Keras' mask,
read from the zeros of Keras' output, is replayed through minidl's own Dropout (which must then
give Keras' values), and each library's kept fraction and scale are checked on their own draws.
"""
import numpy as np
import pytest

import minidl
from minidl import layers
from minidl.layers.conv import ZeroPadding1D, ZeroPadding2D
from minidl.tensor import Tensor
from tests.reference.make_core_fixtures import LAYER_CASES, generate_layers, load_layers

CORE_LAYERS = {"Activation": layers.Activation, "Flatten": layers.Flatten, "Reshape": layers.Reshape,
               "Dropout": layers.Dropout, "InputLayer": layers.InputLayer}


class ReplayedDraws:
    """Stands in for minidl's generator: ``random(shape)`` gives 1 where ``kept`` holds and 0
    elsewhere, so dropout_mask's own test (draw >= rate, rate > 0) keeps exactly ``kept``."""

    def __init__(self, kept: np.ndarray):
        self.kept = kept

    def random(self, shape):
        if tuple(shape) != self.kept.shape:
            raise AssertionError(f"dropout asked for a mask of shape {tuple(shape)}, Keras' is {self.kept.shape}")
        return self.kept.astype("float64")


def keras_mask(x: np.ndarray, y: np.ndarray, noise_shape) -> np.ndarray:
    """Keras' keep mask, from the zeros of its output (x is never exactly 0), reduced to the mask
    shape minidl draws: size 1 along the axes noise_shape gives as 1, after checking Keras kept
    the mask constant along them."""
    kept = y != 0
    assert not np.any(x == 0)
    if noise_shape is not None:
        for axis, size in enumerate(noise_shape):
            if size == 1:
                np.testing.assert_array_equal(kept, np.broadcast_to(kept.take([0], axis), kept.shape))
                kept = kept.take([0], axis)
    return kept


def run_core(case: str, x: np.ndarray, y: np.ndarray, monkeypatch) -> np.ndarray:
    """minidl's layer for LAYER_CASES[case] on x; in training, with Keras' mask replayed."""
    class_name, kwargs, _, training = LAYER_CASES[case]
    kwargs = {k: v for k, v in kwargs.items() if k != "seed"}  # minidl's Dropout draws from dl.random
    layer = CORE_LAYERS[class_name](**kwargs)
    if not training:
        return layer(Tensor(x)).numpy()
    with monkeypatch.context() as patch:
        patch.setattr(minidl.random, "generator", lambda: ReplayedDraws(keras_mask(x, y, kwargs.get("noise_shape"))))
        return layer(Tensor(x), training=True).numpy()


@pytest.mark.parametrize("case", sorted(LAYER_CASES))
def test_core_layer_matches_keras_fixture(case, monkeypatch):
    data = load_layers()[case]
    y = run_core(case, data["x"], data["y"], monkeypatch)
    assert y.dtype == np.float32 and y.shape == data["y"].shape
    np.testing.assert_allclose(y, data["y"], rtol=1e-6, atol=1e-7)


def test_core_layers_match_keras_live(monkeypatch):
    pytest.importorskip("keras")
    live = generate_layers()
    for case in LAYER_CASES:
        x, expected = live[f"{case}/x"], live[f"{case}/y"]
        np.testing.assert_allclose(run_core(case, x, expected, monkeypatch), expected, rtol=1e-6, atol=1e-7,
                                   err_msg=case)


@pytest.mark.parametrize("rate", [0.3, 0.5])
def test_dropout_training_statistics_match_keras_live(rng, rate):
    keras = pytest.importorskip("keras")
    x = rng.uniform(0.5, 1.5, size=(200, 250)).astype("float32")
    theirs = keras.ops.convert_to_numpy(keras.layers.Dropout(rate, seed=1)(x, training=True))
    ours = layers.Dropout(rate)(Tensor(x), training=True).numpy()
    tolerance = 4 * np.sqrt(rate * (1 - rate) / x.size)  # four standard deviations of the kept fraction
    for name, y in (("Keras", theirs), ("minidl", ours)):
        kept = y != 0
        assert abs(kept.mean() - (1 - rate)) < tolerance, name
        np.testing.assert_allclose(y[kept], x[kept] / (1 - rate), rtol=1e-6, err_msg=name)  # inverted dropout
    np.testing.assert_array_equal(layers.Dropout(rate)(Tensor(x)).numpy(), x)  # inference: the identity


def test_input_layer_refuses_a_sample_shape_keras_refuses_live():
    keras = pytest.importorskip("keras")
    inputs = keras.Input(shape=(3, 2))
    wrong = np.ones((4, 5, 2), dtype="float32")
    with pytest.raises(ValueError, match="incompatible"):
        keras.Model(inputs, inputs)(wrong)
    with pytest.raises(ValueError, match=r"expected samples of shape \(3, 2\)"):
        layers.InputLayer(shape=(3, 2))(Tensor(wrong))


ZERO_PADDING_CASES = [
    pytest.param(ZeroPadding1D, "ZeroPadding1D", dict(padding=2), (2, 4, 3), id="1d-both-2"),
    pytest.param(ZeroPadding1D, "ZeroPadding1D", dict(padding=(1, 3)), (1, 1, 2), id="1d-1-3-length-1"),
    pytest.param(ZeroPadding1D, "ZeroPadding1D", dict(padding=(0, 2)), (3, 5, 1), id="1d-after-only"),
    pytest.param(ZeroPadding2D, "ZeroPadding2D", dict(padding=1), (2, 3, 4, 2), id="2d-1"),
    pytest.param(ZeroPadding2D, "ZeroPadding2D", dict(padding=(2, 1)), (1, 2, 3, 3), id="2d-symmetric-2-1"),
    pytest.param(ZeroPadding2D, "ZeroPadding2D", dict(padding=((1, 0), (2, 1))), (2, 3, 4, 2), id="2d-pairs"),
    pytest.param(ZeroPadding2D, "ZeroPadding2D", dict(padding=((0, 2), (3, 0))), (1, 1, 1, 1), id="2d-one-pixel"),
]


@pytest.mark.parametrize("ours, class_name, kwargs, shape", ZERO_PADDING_CASES)
def test_zero_padding_matches_keras_live(rng, ours, class_name, kwargs, shape):
    keras = pytest.importorskip("keras")
    x = rng.normal(size=shape).astype("float32")
    expected = keras.ops.convert_to_numpy(getattr(keras.layers, class_name)(**kwargs)(x))
    y = ours(**kwargs)(Tensor(x)).numpy()
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, expected)
