"""minidl: a small deep-learning framework on NumPy (CuPy on a GPU), written to be read.

    import minidl as dl
    from minidl import layers
"""
from minidl import backend, random
from minidl.backend import floatx, set_floatx
from minidl.function import Function, is_grad_enabled, no_grad
from minidl.gradcheck import GradcheckError, gradcheck
from minidl.tensor import Tensor

__version__ = "0.1.0"
