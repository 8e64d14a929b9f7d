"""Fused recurrent ops: SimpleRNN, LSTM and GRU over whole sequences, BPTT derived by hand.

Each op is one Function that runs the whole sequence. The design, the same for all three:

    forward   X·W + b for every step at once (one GEMM, the bias riding in it), then a Python
              loop over time for the recurrent product h·U (one GEMM per step for all gates)
              and the gate arithmetic, done in place in buffers allocated once per call; the
              LSTM folds its input projection into the step's GEMM instead, one product of all
              its weights Θ = [U; W; b] with [h_{t-1}; x_t; 1];
    backward  back-propagation through time: a reverse loop that does one GEMM per step
              (∂z·Uᵀ) and writes each step's pre-activation gradient ∂z into one buffer, then
              one GEMM each for ∂W = Xᵀ·∂Z, ∂U = H_prevᵀ·∂Z and ∂X = ∂Z·Wᵀ over all steps
              (∂Z: the ∂z of every step side by side; the LSTM's ∂Θ is one GEMM). A gradient
              that decays into float32's subnormal range is rounded out of it (SubnormalFlush).

One cell a file, each with its fused Function (the equations are in its docstring), the CUDA
step that replaces its NumPy step on CuPy, and its reference cell built from primitive ops,
which the tests hold the fused op to and the layers fall back on for other activations:

    _common.py     the shared base RecurrentFunction, masks, the input projection, the loop
                   of the reference cells, the transposed layout inside, SubnormalFlush
    simple_rnn.py  SimpleRNNFunction, simple_rnn; simple_rnn_cell, simple_rnn_reference
    lstm.py        LSTMFunction, lstm; lstm_cell, lstm_reference
    gru.py         GRUFunction (reset after), gru (both forms); gru_cell, gru_reference
    gru_reset_before.py  GRUResetBeforeFunction: Cho et al.'s reset-before GRU (reset_after=False)
    _dropout.py    per-gate dropout masks fixed over the steps (recurrent_dropout; Gal &
                   Ghahramani 2016): the products per gate that replace the fused one

Layouts are Keras' (gate blocks along the last axis): SimpleRNN kernel (features, units);
LSTM kernel (features, 4u), recurrent_kernel (u, 4u), bias (4u,), gates i, f, c, o; GRU with
``reset_after=True``: kernel (features, 3u), recurrent_kernel (u, 3u), bias (2, 3u) (input
bias, recurrent bias), gates z, r, h; with ``reset_after=False`` bias (3u,). Inputs and outputs are batch-major (batch, steps, ...).

The functions ``simple_rnn``, ``lstm`` and ``gru`` take the names of their modules as
attributes of this package; ``importlib.import_module("minidl.functional.recurrent.lstm")``
reaches the module itself.
"""
from minidl.functional.recurrent._common import FUSED_ACTIVATIONS, RecurrentFunction, can_fuse
from minidl.functional.recurrent.gru import GRUFunction, gru, gru_cell, gru_reference
from minidl.functional.recurrent.gru_reset_before import GRUResetBeforeFunction
from minidl.functional.recurrent.lstm import LSTMFunction, lstm, lstm_cell, lstm_reference
from minidl.functional.recurrent.simple_rnn import (SimpleRNNFunction, simple_rnn, simple_rnn_cell,
                                                    simple_rnn_reference)

__all__ = ["FUSED_ACTIVATIONS", "RecurrentFunction", "can_fuse",
           "SimpleRNNFunction", "simple_rnn", "simple_rnn_cell", "simple_rnn_reference",
           "LSTMFunction", "lstm", "lstm_cell", "lstm_reference",
           "GRUFunction", "GRUResetBeforeFunction", "gru", "gru_cell", "gru_reference"]
