import importlib.util
import sys

import numpy as np
import pytest

import minidl as dl
from minidl import backend


def test_array_module_follows_the_data():
    assert backend.get_array_module(np.ones(2)) is np
    assert backend.get_array_module(dl.Tensor(np.ones(2))) is np


def test_importing_minidl_does_not_import_cupy():
    assert "cupy" not in sys.modules or importlib.util.find_spec("cupy") is not None


def test_unknown_backend_name_is_refused():
    with pytest.raises(ValueError, match="'numpy' or 'cupy'"):
        backend.use("jax")


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="cupy is installed")
def test_cupy_without_cupy_says_what_to_install():
    with pytest.raises(backend.BackendError, match="cupy-cuda12x"):
        backend.use("cupy")
    assert backend.current() == "numpy"


def test_set_floatx_checks_its_argument():
    with pytest.raises(ValueError, match="float32"):
        dl.set_floatx("int8")


@pytest.mark.cupy
def test_tensor_round_trip_to_gpu():
    x = dl.Tensor(np.arange(4.0), requires_grad=True)
    g = x.to("gpu")
    assert g.device == "gpu" and g.requires_grad
    (g * g).sum().backward()
    np.testing.assert_allclose(backend.to_numpy(g.grad), 2 * np.arange(4.0))
    assert g.to("cpu").device == "cpu"
