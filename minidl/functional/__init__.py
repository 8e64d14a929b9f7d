"""Differentiable primitives, one Function per op (import minidl.functional as F)."""
from minidl.functional.activation import (elu, exponential, gelu, get_activation, hard_sigmoid, hard_silu,
                                          hard_swish, leaky_relu, linear, log_softmax, mish, prelu, relu,
                                          relu6, relu_with_options, selu, sigmoid, silu, softmax, softplus,
                                          softsign, swish, tanh)
from minidl.functional.arithmetic import (abs, add, cast, clip, div, exp, log, matmul, mul, neg, pow,
                                          sqrt, sub, where)
from minidl.functional.dropout import dropout
from minidl.functional.affine import affine
from minidl.functional.loss import (binary_crossentropy, categorical_crossentropy, mean_squared_error,
                                    sparse_categorical_crossentropy)
from minidl.functional.reduction import max, mean, sum
from minidl.functional.shape import concatenate, getitem, pad, reshape, stack, transpose
from minidl.functional.conv import conv1d, conv2d, col2im, im2col
from minidl.functional.conv_pool import conv2d_max_pool
from minidl.functional.depthwise_conv import depthwise_conv1d, depthwise_conv2d, separable_conv1d, separable_conv2d
from minidl.functional.conv_transpose import conv1d_transpose, conv2d_transpose
from minidl.functional.ctc import ctc_loss
from minidl.functional.normalization import (batch_normalization, batch_normalization_masked_train,
                                             batch_normalization_train, layer_normalization)
from minidl.functional.pooling import (avg_pool1d, avg_pool2d, global_average_pool, global_max_pool, max_pool1d,
                                       max_pool2d)
