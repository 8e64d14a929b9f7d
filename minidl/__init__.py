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
from minidl import functional, tensor
tensor.use_functional(functional)  # Tensor's operators call the ops; minidl/tensor.py says why here
from minidl import (callbacks, data, initializers, layers, losses, metrics,  # noqa: E402
                    optimizers, regularizers, saving, utils, workspace)
# dl.trace is the function (`with dl.trace() as t:`); the module is minidl.trace's, as in sys.modules
from minidl.trace import trace  # noqa: E402
from minidl import models  # noqa: E402
from minidl.models import Model, Sequential, clone_model, model_from_json  # noqa: E402
from minidl.layers.input_layer import Input  # noqa: E402
from minidl.saving import load_model  # noqa: E402
from minidl import export  # noqa: E402  dl.export.onnx, dl.export.keras; onnx and keras load when used
from minidl.export import from_keras  # noqa: E402
# dl.quantize is the function, with .save and .load; the module is minidl.quantize's, as dl.trace
from minidl.quantize import quantize  # noqa: E402

__version__ = "0.1.0"
