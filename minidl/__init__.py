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
from minidl import (callbacks, data, functional, initializers, layers, losses, metrics,
                    optimizers, regularizers, saving, utils, workspace)
from minidl import models
from minidl.models import Sequential
from minidl.saving import load_model

__version__ = "0.1.0"
