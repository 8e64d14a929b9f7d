import numpy as np
import pytest

import minidl as dl
from minidl.function import Function


class WrongSquare(Function):
    """A deliberately wrong op (gradient x instead of 2x) for the checker to catch."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, gy):
        return gy * self.x


def test_passes_a_correct_gradient():
    x = np.random.default_rng(0).normal(size=(3, 4))
    w = np.random.default_rng(1).normal(size=(4, 2))
    assert dl.gradcheck(lambda a, b: (a @ b).tanh().sum(), (x, w))


def test_names_input_and_worst_element_of_a_wrong_gradient():
    x = np.array([[0.1, 0.2], [0.3, 4.0]])
    with pytest.raises(dl.GradcheckError, match=r"input 0 of shape \(2, 2\), element \(1, 1\)"):
        dl.gradcheck(lambda a: WrongSquare().apply(a), (x,))


def test_refuses_float32_inputs():
    with pytest.raises(TypeError, match="float64"):
        dl.gradcheck(lambda a: a * 2, (np.ones(3, dtype=np.float32),))


def test_integer_inputs_pass_through_as_constants():
    x = np.random.default_rng(0).normal(size=(4, 3))
    labels = np.array([0, 2, 1, 1])
    import minidl.functional as F
    assert dl.gradcheck(lambda z, y: F.sparse_categorical_crossentropy(y, z, from_logits=True), (x, labels))
