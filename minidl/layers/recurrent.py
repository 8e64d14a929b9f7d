"""Recurrent layers with Keras' names, arguments and weight layouts: SimpleRNN, LSTM, GRU.

Each layer runs the fused op of ``minidl.functional.recurrent`` (whole sequence in one
Function, backward by hand-derived BPTT); an activation that op does not know (any callable
other than minidl's tanh, sigmoid, relu, linear) runs the primitive-op reference cell beside
it instead (``lstm_reference`` in ``functional/recurrent/lstm.py``, and so on), which autograd
differentiates.

Masks: a bool (batch, steps) mask comes from ``mask=`` on call, or from ``inputs.mask`` (set by
Masking, by a Conv1D front end, or by any layer that passes one on). At a False step the states
are carried through unchanged and, with ``return_sequences``, the output repeats the previous
output (zeros with ``zero_output_for_mask=True``, which Bidirectional sets), as in Keras 3.
"""
from __future__ import annotations

import numpy as np

import minidl.functional as F
from minidl import backend, initializers
from minidl.functional import recurrent
from minidl.layers.base import Layer, check_last_axis, check_rank
from minidl.layers.core import config_name
from minidl.tensor import Tensor, as_tensor


class _RNN(Layer):
    """What SimpleRNN, LSTM and GRU share: arguments, weights, masks, initial states, outputs.

    Subclasses set ``gates`` (gate blocks per weight), ``state_names`` and ``_run``.
    """

    gates = 1
    state_names = ("h",)

    def __init__(self, units: int, activation="tanh", use_bias: bool = True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", dropout: float = 0.0, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False,
                 zero_output_for_mask: bool = False, **kwargs):
        super().__init__(**kwargs)
        kind = type(self).__name__
        if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"{kind}: units must be a positive int, got {units!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"{kind}: dropout must be in [0, 1), got {dropout!r}")
        self.units = units
        self.activation_name = activation  # as given (name or callable): what get_config saves
        self.activation = F.get_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.dropout = float(dropout)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.supports_masking = True

    # --- weights -----------------------------------------------------------------------------
    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 3:
            raise ValueError(f"{type(self).__name__} '{self.name}' expects a 3-D input "
                             f"(batch, steps, features), got shape {tuple(input_shape)}")
        self.input_dim = input_shape[-1]
        width = self.gates * self.units
        self.kernel = self.add_weight("kernel", (self.input_dim, width), self.kernel_initializer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, width),
                                                self.recurrent_initializer)
        self.bias = self.add_weight("bias", self._bias_shape(), self._bias_init()) if self.use_bias else None

    def _bias_shape(self) -> tuple:
        return (self.gates * self.units,)

    def _bias_init(self):
        return self.bias_initializer

    # --- calling -----------------------------------------------------------------------------
    def call(self, inputs: Tensor, training: bool = False, mask=None, initial_state=None):
        kind = type(self).__name__
        check_rank(self, inputs, 3, "(batch, steps, features)")
        check_last_axis(self, inputs, self.input_dim)
        batch, steps = inputs.shape[0], inputs.shape[1]
        if mask is not None:
            mask = mask.data if isinstance(mask, Tensor) else mask
            if tuple(mask.shape) != (batch, steps):
                raise ValueError(f"{kind} '{self.name}' expects a mask of shape (batch, steps) = "
                                 f"{(batch, steps)} for an input of shape {inputs.shape}, "
                                 f"got a mask of shape {tuple(mask.shape)}")
            mask = backend.get_array_module(inputs.data).asarray(mask, dtype=bool)
        states = self._initial_states(inputs, initial_state)
        if training and self.dropout > 0:  # one mask per sequence, the same at every step (Keras)
            inputs = F.dropout(inputs, self.dropout, training=True,
                               noise_shape=(batch, 1, inputs.shape[-1]))
        outputs, *states = self._run(inputs, states, mask)
        if self.return_sequences:
            output = outputs
        elif mask is None:  # unmasked, the last output is the last h: no slice, no gradient scatter
            output = states[0]
        else:
            output = outputs[:, -1]
        if not self.return_state:
            return output
        output.mask = self.compute_mask(inputs, mask)
        return [output, *states]

    def _initial_states(self, inputs: Tensor, initial_state) -> list[Tensor]:
        """The states to start from: ``initial_state`` (one per state, (batch, units)) or zeros."""
        kind = type(self).__name__
        xp = backend.get_array_module(inputs.data)
        shape = (inputs.shape[0], self.units)
        if initial_state is None:
            return [Tensor(xp.zeros(shape, dtype=inputs.dtype)) for _ in self.state_names]
        if isinstance(initial_state, (Tensor,)) or hasattr(initial_state, "shape"):
            initial_state = [initial_state]
        initial_state = list(initial_state)
        if len(initial_state) != len(self.state_names):
            raise ValueError(f"{kind} '{self.name}' expects {len(self.state_names)} initial state(s) "
                             f"({', '.join(self.state_names)}), got {len(initial_state)}")
        states = []
        for name, state in zip(self.state_names, initial_state):
            state = as_tensor(state)
            if state.shape != shape:
                raise ValueError(f"{kind} '{self.name}' expects initial state {name} of shape {shape}, "
                                 f"got shape {state.shape}")
            states.append(state if state.dtype == inputs.dtype else F.cast(state, inputs.dtype))
        return states

    def compute_mask(self, inputs: Tensor, mask):
        """The input mask when every step is returned (return_sequences), else None (Keras)."""
        return mask if self.return_sequences else None

    def _options(self) -> dict:
        return {"mask": None, "go_backwards": self.go_backwards,
                "zero_output_for_mask": self.zero_output_for_mask}

    def _run(self, inputs: Tensor, states: list, mask) -> tuple:
        raise NotImplementedError

    # --- configuration ------------------------------------------------------------------------
    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "activation": config_name(self.activation_name),
                "use_bias": self.use_bias, "kernel_initializer": config_name(self.kernel_initializer),
                "recurrent_initializer": config_name(self.recurrent_initializer),
                "bias_initializer": config_name(self.bias_initializer), "dropout": self.dropout,
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "zero_output_for_mask": self.zero_output_for_mask}


class SimpleRNN(_RNN):
    """A fully connected recurrence (Elman, 1990) over a whole sequence.

    The equations, forward and backward, are in ``SimpleRNNFunction``
    (minidl/functional/recurrent/simple_rnn.py). Weights as in Keras: kernel W (features, units),
    recurrent_kernel U (units, units), bias b (units,); ``layer.set_weights(keras_layer.get_weights())``
    gives Keras' outputs.

    Args:
        units: int > 0, size of h.
        activation: "tanh" (default), "relu", "sigmoid", None (linear) or a callable.
        use_bias: whether to add b.
        kernel_initializer, recurrent_initializer, bias_initializer: Keras names or callables.
        dropout: fraction of the input features dropped in training (one mask per sequence).
        return_sequences: return h_t for every step if True, else only the last output.
        return_state: also return the final state: [output, h].
        go_backwards: process the steps last to first (outputs in that order, as Keras).
        zero_output_for_mask: with a mask, zero outputs at masked steps (else repeat the last).
    Call arguments:
        inputs: (batch, steps, features).
        mask: optional bool (batch, steps); at False steps h passes through unchanged.
        initial_state: optional [h0] (batch, units); zeros by default.
        training: whether dropout is applied.
    Input shape:  (batch, steps, features)
    Output shape: (batch, steps, units) if return_sequences, else (batch, units)
    """

    def _run(self, inputs, states, mask):
        options = {**self._options(), "mask": mask}
        if recurrent.can_fuse(self.activation):
            return recurrent.simple_rnn(inputs, *states, self.kernel, self.recurrent_kernel, self.bias,
                                    activation=self.activation, **options)
        return recurrent.simple_rnn_reference(inputs, *states, self.kernel, self.recurrent_kernel,
                                              self.bias, activation=self.activation, **options)


class LSTM(_RNN):
    """Long short-term memory with a forget gate (Gers, Schmidhuber & Cummins, 2000) over a whole
    sequence, as Keras' LSTM.

    The equations, forward and backward, are in ``LSTMFunction`` (minidl/functional/recurrent/lstm.py).
    Weights as in Keras, gate blocks i, f, c, o along the last axis: kernel (features, 4·units),
    recurrent_kernel (units, 4·units), bias (4·units,); Keras weights load unchanged.

    Args:
        units: int > 0, size of h and c.
        activation: of g and of c_t in h_t; "tanh" by default.
        recurrent_activation: of i, f, o; "sigmoid" by default.
        use_bias, kernel_initializer, recurrent_initializer, bias_initializer: as SimpleRNN.
        unit_forget_bias: start b_f at 1 (Jozefowicz et al., 2015), as Keras does by default.
        dropout, return_sequences, go_backwards, zero_output_for_mask: as SimpleRNN.
        return_state: also return the final states: [output, h, c].
    Call arguments:
        mask: optional bool (batch, steps); at False steps h and c pass through unchanged.
        initial_state: optional [h0, c0], each (batch, units); zeros by default.
        training: whether dropout is applied.
    Input shape:  (batch, steps, features)
    Output shape: (batch, steps, units) if return_sequences, else (batch, units)
    """

    gates = 4
    state_names = ("h", "c")

    def __init__(self, units: int, activation="tanh", recurrent_activation="sigmoid",
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias: bool = True, dropout: float = 0.0, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False,
                 zero_output_for_mask: bool = False, **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, dropout=dropout,
                         return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask, **kwargs)
        self.recurrent_activation_name = recurrent_activation
        self.recurrent_activation = F.get_activation(recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)

    def _bias_init(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        base, units = initializers.get(self.bias_initializer), self.units

        def forget_bias_one(shape):  # Keras: [init(u), ones(u), init(2u)]
            return np.concatenate([base((units,)), np.ones(units), base((2 * units,))])
        return forget_bias_one

    def _run(self, inputs, states, mask):
        options = {**self._options(), "mask": mask}
        if recurrent.can_fuse(self.activation, self.recurrent_activation):
            return recurrent.lstm(inputs, *states, self.kernel, self.recurrent_kernel, self.bias,
                              activation=self.activation, recurrent_activation=self.recurrent_activation,
                              **options)
        return recurrent.lstm_reference(inputs, *states, self.kernel, self.recurrent_kernel, self.bias,
                                        activation=self.activation,
                                        recurrent_activation=self.recurrent_activation, **options)

    def get_config(self) -> dict:
        return {**super().get_config(), "recurrent_activation": config_name(self.recurrent_activation_name),
                "unit_forget_bias": self.unit_forget_bias}


class GRU(_RNN):
    """Gated recurrent unit over a whole sequence in the reset-after form (the reset gate applied
    after the recurrent product), as Keras' default ``reset_after=True``, cuDNN and PyTorch; not
    the reset-before form of Cho et al. (2014).

    The equations, forward and backward, are in ``GRUFunction`` (minidl/functional/recurrent/gru.py).
    Weights as in Keras, gate blocks z, r, h: kernel (features, 3·units), recurrent_kernel
    (units, 3·units), bias (2, 3·units), the input bias b and the recurrent bias b'; Keras weights
    load unchanged.

    Args:
        units: int > 0, size of h.
        activation: of ĥ, "tanh"; recurrent_activation: of z and r, "sigmoid".
        reset_after: must be True (the reset gate applied after the recurrent product);
            Keras' older reset_after=False GRU is not supported.
        use_bias, initializers, dropout, return_sequences, go_backwards, zero_output_for_mask:
            as SimpleRNN. return_state: [output, h].
    Call arguments:
        mask: optional bool (batch, steps); at False steps h passes through unchanged.
        initial_state: optional [h0] (batch, units). training: whether dropout is applied.
    Input shape:  (batch, steps, features)
    Output shape: (batch, steps, units) if return_sequences, else (batch, units)
    """

    gates = 3

    def __init__(self, units: int, activation="tanh", recurrent_activation="sigmoid",
                 use_bias: bool = True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", dropout: float = 0.0,
                 return_sequences: bool = False, return_state: bool = False, go_backwards: bool = False,
                 reset_after: bool = True, zero_output_for_mask: bool = False, **kwargs):
        if reset_after is not True:
            raise ValueError(f"GRU: only reset_after=True (Keras' default, the reset gate applied "
                             f"after the recurrent product) is supported, got reset_after={reset_after!r}")
        super().__init__(units, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, dropout=dropout,
                         return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask, **kwargs)
        self.recurrent_activation_name = recurrent_activation
        self.recurrent_activation = F.get_activation(recurrent_activation)
        self.reset_after = True

    def _bias_shape(self) -> tuple:
        return (2, 3 * self.units)

    def _run(self, inputs, states, mask):
        options = {**self._options(), "mask": mask}
        if recurrent.can_fuse(self.activation, self.recurrent_activation):
            return recurrent.gru(inputs, *states, self.kernel, self.recurrent_kernel, self.bias,
                             activation=self.activation, recurrent_activation=self.recurrent_activation,
                             **options)
        return recurrent.gru_reference(inputs, *states, self.kernel, self.recurrent_kernel, self.bias,
                                       activation=self.activation,
                                       recurrent_activation=self.recurrent_activation, **options)

    def get_config(self) -> dict:
        return {**super().get_config(), "recurrent_activation": config_name(self.recurrent_activation_name),
                "reset_after": self.reset_after}
