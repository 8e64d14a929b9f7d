"""The test environment itself: a keras that is installed must import on the torch backend."""
import importlib.util
import os


def test_keras_backend_is_torch_before_keras_imports():
    assert os.environ["KERAS_BACKEND"] == "torch"


def test_installed_keras_imports():
    if importlib.util.find_spec("keras") is None:
        return  # not installed (make test): nothing to check; make test-all installs it
    import keras  # a broken install must fail here, not skip every live comparison quietly
    assert keras.backend.backend() == "torch"
