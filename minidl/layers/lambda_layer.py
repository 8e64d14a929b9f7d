"""Lambda: a layer that calls a Python function, saved by the function's registered name only.

    @layers.register_lambda_function
    def frame_energy(x):
        return F.mean(F.mul(x, x), axis=-1, keepdims=True)

    model = dl.Sequential([..., layers.Lambda(frame_energy), ...])

A model file is data, never code: Keras can save a Lambda's bytecode (and refuses to load it
unless ``safe_mode=False``); minidl saves only the name. Loading a model with a Lambda needs
the same function registered under that name in the loading program, and fails with a message
naming it otherwise. Nothing from the file is ever unpickled or executed.
"""
from __future__ import annotations

from typing import Callable

from minidl.layers.base import Layer

LAMBDA_FUNCTIONS: dict[str, Callable] = {}   # registered name -> function, filled by register_lambda_function


def register_lambda_function(function: Callable | None = None, *, name: str | None = None):
    """Register ``function`` under ``name`` (default: its ``__name__``) so that a saved Lambda
    calling it can be loaded. Usable as ``@register_lambda_function`` or with ``name=``.

    Raises:
        ValueError: a lambda expression without a name, or the name already taken by another function.
    """
    def register(fn: Callable) -> Callable:
        key = name or getattr(fn, "__name__", None)
        if not callable(fn) or not key or key == "<lambda>":
            raise ValueError("register_lambda_function: give a named function (a def), or name= for a lambda")
        if LAMBDA_FUNCTIONS.get(key, fn) is not fn:
            raise ValueError(f"register_lambda_function: the name {key!r} is taken by {LAMBDA_FUNCTIONS[key]!r}")
        LAMBDA_FUNCTIONS[key] = fn
        return fn

    return register if function is None else register(function)


class Lambda(Layer):
    """y = function(x, **arguments), differentiable as far as ``function`` uses minidl ops.

    Args:
        function: a callable on Tensors, or (when rebuilt from a file) the name it was
            registered under with ``register_lambda_function``.
        output_shape: accepted for Keras' signature; the shape is found by calling the function.
        mask: None (the mask is dropped, as Keras), or a callable ``mask(inputs, mask)``.
        arguments: keyword arguments for ``function`` (JSON values, to be saved).
    Saving: only the registered name is written. A function never registered can be used, but
    saving the model raises, naming it.
    """

    def __init__(self, function, output_shape=None, mask=None, arguments: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(function, str):
            if function not in LAMBDA_FUNCTIONS:
                raise ValueError(f"Lambda: the function {function!r} is not registered; call "
                                 f"minidl.layers.register_lambda_function on it before loading (minidl saves a "
                                 f"Lambda's function by name only and never loads code from a file)")
            function = LAMBDA_FUNCTIONS[function]
        if not callable(function):
            raise TypeError(f"Lambda: function must be callable or a registered name, got {function!r}")
        if mask is not None and not callable(mask):
            raise NotImplementedError("Lambda: a constant mask is not supported by minidl; give None or a callable")
        self.function, self.mask_function = function, mask
        self.output_shape_arg = output_shape
        self.arguments = dict(arguments or {})

    def call(self, inputs):
        return self.function(inputs, **self.arguments)

    def compute_mask(self, inputs, mask):
        return self.mask_function(inputs, mask) if self.mask_function is not None else None

    def get_config(self):
        name = next((key for key, fn in LAMBDA_FUNCTIONS.items() if fn is self.function), None)
        if name is None:
            raise ValueError(f"Lambda '{self.name}': its function {self.function!r} is not registered, so it cannot "
                             f"be saved; decorate it with @minidl.layers.register_lambda_function")
        if self.mask_function is not None:
            raise NotImplementedError(f"Lambda '{self.name}': saving a Lambda with a mask function is not supported")
        output_shape = self.output_shape_arg
        return {**super().get_config(), "function": name, "arguments": self.arguments,
                "output_shape": None if callable(output_shape) else
                list(output_shape) if isinstance(output_shape, tuple) else output_shape}
