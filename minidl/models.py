"""Keras' ``keras.models``: Model, Sequential, and the functions that copy architectures.

    import minidl as dl
    x = dl.Input((20,))
    model = dl.Model(x, dl.layers.Dense(3, activation="softmax")(dl.layers.Dense(16)(x)))

``Model`` lives in ``minidl.model`` (compile, fit, evaluate, predict, summary, save),
``Sequential`` in ``minidl.sequential``, the JSON round trip in ``minidl.model_io``.
"""
from minidl.model import Model
from minidl.model_io import clone_model, model_from_json
from minidl.sequential import Sequential

__all__ = ["Model", "Sequential", "clone_model", "model_from_json"]
