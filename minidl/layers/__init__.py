"""Keras-named layers (from minidl import layers)."""
from minidl.layers.base import LAYERS, Layer
from minidl.layers.core import Activation, Dense, Dropout, Flatten, Input, InputLayer, Reshape
