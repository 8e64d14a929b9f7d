"""minidl: a small deep-learning framework on NumPy (CuPy on a GPU), written to be read.

    import minidl as dl
    from minidl import layers

    model = dl.Sequential([layers.Dense(64, activation="relu"), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=10)
"""
from minidl import backend, random
from minidl.backend import floatx, set_floatx
from minidl.function import Function, is_grad_enabled, no_grad
from minidl.gradcheck import GradcheckError, gradcheck
from minidl.tensor import Tensor
from minidl import (callbacks, data, functional, initializers, layers, losses, metrics,  # noqa: E402
                    optimizers, regularizers, utils, workspace)
from minidl import models  # noqa: E402
from minidl.models import Sequential  # noqa: E402

__version__ = "0.1.0"


def load_model(path):
    """A model saved with ``model.save(path)``; see minidl.saving.load_model."""
    from minidl.saving import load_model as load  # noqa: PLC0415 (saving imports models)
    return load(path)
