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

Dropout, in training only, as Keras 3 draws it: ``dropout`` alone drops input features with one
mask per sequence, the same at every step, shared by all gates (the fused product stays one
GEMM); ``recurrent_dropout`` draws one mask per gate for the state h fed back and, with
``dropout``, one per gate for the input too, each fixed over the steps (Gal & Ghahramani,
2016; ``functional/recurrent/_dropout.py``), and the products are then computed gate by gate.

``stateful=True`` carries the final states of one call over as the initial states of the next
(sample i of a batch continues sample i of the previous batch), until ``reset_states()``.
"""
from __future__ import annotations

import numpy as np

import minidl.functional as F
from minidl import backend, initializers
from minidl.functional import recurrent
from minidl.functional.dropout import Dropout, dropout_mask
from minidl.layers.base import Layer, check_last_axis, check_rank
from minidl.layers.core import config_name
from minidl.layers.symbolic import in_shape_trial
from minidl.tensor import Tensor, as_tensor


class _RNN(Layer):
    """What SimpleRNN, LSTM and GRU share: arguments, weights, masks, initial states, outputs.

    Subclasses set ``gates`` (gate blocks per weight), ``state_names`` and ``_run``.
    """

    gates = 1
    state_names = ("h",)

    def __init__(self, units: int, activation="tanh", use_bias: bool = True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 return_sequences: bool = False, return_state: bool = False, go_backwards: bool = False,
                 stateful: bool = False, unroll: bool = False, zero_output_for_mask: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        kind = type(self).__name__
        if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"{kind}: units must be a positive int, got {units!r}")
        for name, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0 <= rate < 1:
                raise ValueError(f"{kind}: {name} must be in [0, 1), got {rate!r}")
        self.units = units
        self.activation_name = activation  # as given (name or callable): what get_config saves
        self.activation = F.get_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        # Keras unrolls the symbolic loop into one graph; minidl's loop runs step by step either
        # way, so unroll changes nothing here: accepted and kept for get_config.
        self.unroll = bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.supports_masking = True
        self.states: list[Tensor] | None = None  # with stateful: the final states of the last call

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
        dropout_masks = self._draw_dropout_masks(inputs) if training else {}
        shared_input_mask = dropout_masks.pop("shared_input_mask", None)
        if shared_input_mask is not None:  # dropout alone: x ⊙ m, the fused product stays one GEMM
            inputs = Dropout(shared_input_mask).apply(inputs)
        outputs, *states = self._run(inputs, states, mask, **dropout_masks)
        if self.stateful and not in_shape_trial():  # carried as values: no gradient across batches
            self.states = [Tensor(state.data.copy()) for state in states]
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

    def _draw_dropout_masks(self, inputs: Tensor) -> dict:
        """The dropout masks of one training call, as Keras 3 draws them, values 0 and 1/(1 - rate)
        from minidl's generator, the same at every step of the call.

        ``dropout`` alone: {"shared_input_mask": (batch, 1, features)}, one mask for all gates.
        With ``recurrent_dropout``: one mask per gate (SimpleRNN one), {"recurrent_masks": (gates,
        batch, units)} and, with ``dropout``, "input_masks": (gates, batch, features). Neither: {}.
        """
        gates, batch, features = self.gates, inputs.shape[0], inputs.shape[-1]
        if self.recurrent_dropout == 0:
            if self.dropout == 0:
                return {}
            return {"shared_input_mask": dropout_mask((batch, 1, features), self.dropout, inputs.data)}
        masks = {"recurrent_masks": dropout_mask((gates, batch, self.units), self.recurrent_dropout, inputs.data)}
        if self.dropout > 0:
            masks["input_masks"] = dropout_mask((gates, batch, features), self.dropout, inputs.data)
        return masks

    def reset_states(self) -> None:
        """Zero the states a stateful layer carries (nothing to do before its first call)."""
        if self.states is not None:
            self.states = [Tensor(state.data * 0) for state in self.states]

    def reset_state(self) -> None:
        """Keras 3's name for ``reset_states``."""
        self.reset_states()

    def _initial_states(self, inputs: Tensor, initial_state) -> list[Tensor]:
        """The states to start from: ``initial_state`` (one per state, (batch, units)), the
        carried states of a stateful layer, or zeros."""
        kind = type(self).__name__
        xp = backend.get_array_module(inputs.data)
        shape = (inputs.shape[0], self.units)
        if initial_state is None and self.stateful and self.states is not None and not in_shape_trial():
            if self.states[0].shape[0] != shape[0]:
                raise ValueError(f"{kind} '{self.name}' is stateful: it carries states for a batch of "
                                 f"{self.states[0].shape[0]}, got an input of shape {inputs.shape}; a "
                                 f"stateful layer keeps the batch size of its first call")
            return [state if state.dtype == inputs.dtype else F.cast(state, inputs.dtype)
                    for state in self.states]
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

    def _options(self, mask, dropout_masks: dict) -> dict:
        return {"mask": mask, "go_backwards": self.go_backwards,
                "zero_output_for_mask": self.zero_output_for_mask, **dropout_masks}

    def _run(self, inputs: Tensor, states: list, mask, **dropout_masks) -> tuple:
        raise NotImplementedError

    # --- configuration ------------------------------------------------------------------------
    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "activation": config_name(self.activation_name),
                "use_bias": self.use_bias, "kernel_initializer": config_name(self.kernel_initializer),
                "recurrent_initializer": config_name(self.recurrent_initializer),
                "bias_initializer": config_name(self.bias_initializer), "dropout": self.dropout,
                "recurrent_dropout": self.recurrent_dropout, "return_sequences": self.return_sequences,
                "return_state": self.return_state, "go_backwards": self.go_backwards,
                "stateful": self.stateful, "unroll": self.unroll,
                "zero_output_for_mask": self.zero_output_for_mask}


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
        recurrent_dropout: fraction of the units of h dropped where h feeds back, in training
            (one mask per sequence and gate; see the module docstring).
        return_sequences: return h_t for every step if True, else only the last output.
        return_state: also return the final state: [output, h].
        go_backwards: process the steps last to first (outputs in that order, as Keras).
        stateful: start each call from the final states of the previous call (zeros at first
            and after ``reset_states()``); the batch size must stay the same.
        unroll: accepted for Keras' sake; minidl's step loop is the same either way.
        zero_output_for_mask: with a mask, zero outputs at masked steps (else repeat the last).
    Call arguments:
        inputs: (batch, steps, features).
        mask: optional bool (batch, steps); at False steps h passes through unchanged.
        initial_state: optional [h0] (batch, units); zeros by default.
        training: whether dropout is applied.
    Input shape:  (batch, steps, features)
    Output shape: (batch, steps, units) if return_sequences, else (batch, units)
    """

    def _run(self, inputs, states, mask, **dropout_masks):
        options = self._options(mask, dropout_masks)
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
        dropout, recurrent_dropout, return_sequences, go_backwards, stateful, unroll, zero_output_for_mask:
            as SimpleRNN. return_state: also return the final states: [output, h, c].
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
                 unit_forget_bias: bool = True, dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 return_sequences: bool = False, return_state: bool = False, go_backwards: bool = False,
                 stateful: bool = False, unroll: bool = False, zero_output_for_mask: bool = False,
                 **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, dropout=dropout, recurrent_dropout=recurrent_dropout,
                         return_sequences=return_sequences, return_state=return_state, go_backwards=go_backwards,
                         stateful=stateful, unroll=unroll, zero_output_for_mask=zero_output_for_mask, **kwargs)
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

    def _run(self, inputs, states, mask, **dropout_masks):
        options = self._options(mask, dropout_masks)
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
    """Gated recurrent unit over a whole sequence, by default in the reset-after form (the reset
    gate applied after the recurrent product), as Keras' default ``reset_after=True``, cuDNN and
    PyTorch; with ``reset_after=False`` in the reset-before form of Cho et al. (2014).

    The equations, forward and backward, are in ``GRUFunction`` (minidl/functional/recurrent/gru.py)
    and ``GRUResetBeforeFunction`` (gru_reset_before.py beside it). Weights as in Keras, gate
    blocks z, r, h: kernel (features, 3·units), recurrent_kernel (units, 3·units), bias (2, 3·units),
    the input bias b and the recurrent bias b' (reset after) or (3·units,), b alone (reset before);
    Keras weights load unchanged.

    Args:
        units: int > 0, size of h.
        activation: of ĥ, "tanh"; recurrent_activation: of z and r, "sigmoid".
        reset_after: apply the reset gate after the recurrent product (True, Keras' default) or
            before it (False, Cho et al. 2014).
        use_bias, initializers, dropout, recurrent_dropout, return_sequences, go_backwards, stateful, unroll, zero_output_for_mask:
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
                 recurrent_dropout: float = 0.0, return_sequences: bool = False, return_state: bool = False,
                 go_backwards: bool = False, stateful: bool = False, unroll: bool = False,
                 reset_after: bool = True, zero_output_for_mask: bool = False, **kwargs):
        if not isinstance(reset_after, bool):
            raise ValueError(f"GRU: reset_after must be True or False, got {reset_after!r}")
        super().__init__(units, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, dropout=dropout, recurrent_dropout=recurrent_dropout,
                         return_sequences=return_sequences, return_state=return_state, go_backwards=go_backwards,
                         stateful=stateful, unroll=unroll, zero_output_for_mask=zero_output_for_mask, **kwargs)
        self.recurrent_activation_name = recurrent_activation
        self.recurrent_activation = F.get_activation(recurrent_activation)
        self.reset_after = reset_after

    def _bias_shape(self) -> tuple:
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _run(self, inputs, states, mask, **dropout_masks):
        options = {**self._options(mask, dropout_masks), "reset_after": self.reset_after}
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
