"""Test set-up shared by every test folder.

Keras 3 picks its backend when first imported; without KERAS_BACKEND=torch it looks for
TensorFlow, fails, and every live Keras comparison would silently skip. So it is set here,
before any test module can import keras.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", deadline=None, max_examples=30, derandomize=True)
settings.register_profile("dev", deadline=None, max_examples=20)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def _cupy_usable() -> bool:
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    if _cupy_usable():
        return
    skip = pytest.mark.skip(reason="needs CuPy and a CUDA GPU")
    for item in items:
        if "cupy" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _restore_global_state():
    """Each test starts with float32, the numpy backend and a fixed minidl seed."""
    import minidl as dl
    dl.set_floatx("float32")
    dl.backend.use("numpy")
    dl.random.seed(1234)
    yield
    dl.set_floatx("float32")
    dl.backend.use("numpy")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def fsdd_root():
    """The FSDD folder from MINIDL_DATA, or None (tests that need it skip with a reason)."""
    data = os.environ.get("MINIDL_DATA")
    if not data:
        return None
    root = os.path.join(data, "fsdd")
    return root if os.path.isdir(os.path.join(root, "recordings")) else None
