"""Keras-named layers (from minidl import layers)."""
from minidl.layers.base import Layer
from minidl.layers.serialization import LAYERS, deserialize_layer, serialize_layer
from minidl.layers.conv import Conv1D, Conv2D, ZeroPadding1D, ZeroPadding2D
from minidl.layers.depthwise_conv import DepthwiseConv1D, DepthwiseConv2D, SeparableConv1D, SeparableConv2D
from minidl.layers.conv_transpose import Conv1DTranspose, Conv2DTranspose
from minidl.layers.core import Activation, Dense, Dropout, Flatten, Reshape
from minidl.layers.input_layer import Input, InputLayer
from minidl.layers.normalization import BatchNormalization, LayerNormalization, Normalization
from minidl.layers.pooling import (AveragePooling1D, AveragePooling2D, GlobalAveragePooling1D,
                                   GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D,
                                   MaxPooling1D, MaxPooling2D)
from minidl.layers.masking import Masking
from minidl.layers.recurrent import GRU, LSTM, SimpleRNN
from minidl.layers.wrappers import Bidirectional, TimeDistributed
from minidl.layers.merge import Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract
from minidl.layers.activations import ELU, LeakyReLU, PReLU, ReLU, Softmax
from minidl.layers.attention import MultiHeadAttention
from minidl.layers.embedding import Embedding
from minidl.layers.lambda_layer import Lambda, register_lambda_function
from minidl.layers.noise import GaussianNoise, SpatialDropout1D, SpatialDropout2D
from minidl.layers.reshaping import Cropping1D, Cropping2D, Permute, RepeatVector, UpSampling1D, UpSampling2D


def __getattr__(name: str):
    """``layers.ConvLSTM2D`` and other Keras layers minidl lacks: say so, by name."""
    from minidl.layers.serialization import KERAS_ONLY_LAYERS  # noqa: PLC0415 (only on a miss)
    if name in KERAS_ONLY_LAYERS:
        raise AttributeError(f"the Keras layer {name!r} is not supported by minidl")
    raise AttributeError(f"module 'minidl.layers' has no attribute {name!r}")
