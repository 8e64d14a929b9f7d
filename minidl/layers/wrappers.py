"""Layer wrappers: Bidirectional (a recurrent layer run both ways) and TimeDistributed."""
from __future__ import annotations

import minidl.functional as F
from minidl.layers.base import Layer
from minidl.layers.serialization import LAYERS, deserialize_layer, serialize_layer
from minidl.tensor import Tensor

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _layer_from(value, what: str) -> Layer:
    """A layer given as a Layer, or as {"class_name": ..., "config": ...} from get_config()."""
    if isinstance(value, Layer):
        return value
    if isinstance(value, dict) and value.get("class_name") in LAYERS:
        return deserialize_layer(value)
    raise ValueError(f"{what}: expected a Layer (or its saved config), got {value!r}")


def _removeprefix(name: str, prefix: str) -> str:
    return name[len(prefix):] if name.startswith(prefix) else name


class Bidirectional(Layer):
    """Runs a recurrent layer forwards and a copy of it backwards, and merges the two outputs.

    Keras' rules: the forward copy is named ``forward_<name>``, the backward copy
    ``backward_<name>`` with ``go_backwards`` flipped; both get ``zero_output_for_mask =
    return_sequences``; with return_sequences the backward outputs are reversed in time before
    merging, so step t of both directions lines up. Weights: the forward layer's, then the
    backward layer's (Keras' order, so ``set_weights(keras_layer.get_weights())`` works).

        y_fwd = forward(x),  y_bwd = reverse_time(backward(x))
        y = [y_fwd, y_bwd] (concat), y_fwd + y_bwd (sum), y_fwd ⊙ y_bwd (mul), ½(y_fwd + y_bwd) (ave)

    With a mask (right-padded batches) the backward direction starts at each sequence's last
    valid step: the padding at the end is skipped, state carried through.

    Args:
        layer: a SimpleRNN, LSTM or GRU (or its saved config).
        merge_mode: "concat" (default), "sum", "mul", "ave", or None for [y_fwd, y_bwd].
        backward_layer: optional layer to use backwards (its go_backwards must differ).
    Call arguments:
        mask, training: passed to both directions. initial_state: the forward states followed
        by the backward states.
    Output shape: the layer's, with the last axis doubled for "concat"; with return_state,
        [output, *forward_states, *backward_states].

    A stateful layer makes both directions stateful: each carries its own final states to the
    next call (the backward direction's are those after the first step of the sequence), and
    ``reset_states()`` zeroes both.
    """

    def __init__(self, layer, merge_mode: str | None = "concat", backward_layer=None, **kwargs):
        super().__init__(**kwargs)
        layer = _layer_from(layer, "Bidirectional")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"Bidirectional: merge_mode must be one of {MERGE_MODES}, got {merge_mode!r}")
        if not hasattr(layer, "go_backwards"):
            raise ValueError(f"Bidirectional: expected a recurrent layer (SimpleRNN, LSTM, GRU), "
                             f"got {type(layer).__name__}")
        config = layer.get_config()
        self.forward_layer = type(layer)(**{**config, "name": "forward_" + _removeprefix(layer.name, "forward_")})
        if backward_layer is None:
            self.backward_layer = type(layer)(**{**config, "go_backwards": not layer.go_backwards,
                                                 "name": "backward_" + _removeprefix(layer.name, "backward_")})
        else:
            self.backward_layer = _layer_from(backward_layer, "Bidirectional backward_layer")
        if self.forward_layer.go_backwards == self.backward_layer.go_backwards:
            raise ValueError("Bidirectional: the forward and backward layers must differ in go_backwards, "
                             f"got {self.forward_layer.go_backwards} for both")
        for attribute in ("return_sequences", "return_state", "stateful"):
            if getattr(self.forward_layer, attribute) != getattr(self.backward_layer, attribute):
                raise ValueError(f"Bidirectional: the forward and backward layers must agree in "
                                 f"{attribute}, got {getattr(self.forward_layer, attribute)} and "
                                 f"{getattr(self.backward_layer, attribute)}")
        for direction in (self.forward_layer, self.backward_layer):
            direction.zero_output_for_mask = direction.return_sequences
        self.merge_mode = merge_mode
        self.return_sequences = self.forward_layer.return_sequences
        self.return_state = self.forward_layer.return_state
        self.supports_masking = True

    def sublayers(self) -> list[Layer]:
        return [self.forward_layer, self.backward_layer]

    def build(self, input_shape: tuple) -> None:
        for direction in self.sublayers():
            if not direction.built:
                direction.build(tuple(input_shape))
                direction.built = True

    def call(self, inputs: Tensor, training: bool = False, mask=None, initial_state=None):
        forward_state = backward_state = None
        if initial_state is not None:
            half = len(initial_state) // 2
            forward_state, backward_state = list(initial_state[:half]), list(initial_state[half:])
        y = self.forward_layer(inputs, training=training, mask=mask, initial_state=forward_state)
        y_rev = self.backward_layer(inputs, training=training, mask=mask, initial_state=backward_state)
        states = []
        if self.return_state:
            states = list(y[1:]) + list(y_rev[1:])
            y, y_rev = y[0], y_rev[0]
        if self.return_sequences:
            y_rev = y_rev[:, ::-1]
        if self.merge_mode == "concat":
            output = F.concatenate([y, y_rev], axis=-1)
        elif self.merge_mode == "sum":
            output = y + y_rev
        elif self.merge_mode == "mul":
            output = y * y_rev
        elif self.merge_mode == "ave":
            output = (y + y_rev) * 0.5
        else:
            output = [y, y_rev]
        output_mask = mask if self.return_sequences else None
        if isinstance(output, list):
            for part in output:
                part.mask = output_mask
            return output + states
        if self.return_state:
            output.mask = output_mask
            return [output] + states
        return output

    def compute_mask(self, inputs: Tensor, mask):
        return mask if self.return_sequences else None

    @property
    def stateful(self) -> bool:
        """Whether both directions carry their states from call to call (the wrapped layer's)."""
        return self.forward_layer.stateful

    @property
    def states(self) -> list | None:
        """The carried states, the forward direction's then the backward's (None before a call)."""
        if self.forward_layer.states is None or self.backward_layer.states is None:
            return None
        return self.forward_layer.states + self.backward_layer.states

    def reset_states(self) -> None:
        """Zero the carried states of both directions, as Keras' Bidirectional.reset_state."""
        if not self.stateful:
            raise AttributeError(f"Bidirectional '{self.name}': reset_states() needs a stateful layer "
                                 f"(stateful=True), got stateful=False")
        self.forward_layer.reset_states()
        self.backward_layer.reset_states()

    def reset_state(self) -> None:
        """Keras 3's name for ``reset_states``."""
        self.reset_states()

    def get_config(self) -> dict:
        return {**super().get_config(), "layer": serialize_layer(self.forward_layer),
                "merge_mode": self.merge_mode, "backward_layer": serialize_layer(self.backward_layer)}


class TimeDistributed(Layer):
    """Applies a layer to every time step: y[:, t] = layer(x[:, t]).

    The steps are folded into the batch axis, so the wrapped layer runs once on
    (batch·steps, ...) instead of once per step, then the result is unfolded. The wrapped layer's
    weights are this layer's weights. A mask (batch, steps, ...) is folded the same way and given
    to the wrapped layer, which sees the mask of each step as Keras 3 hands it mask[:, t] (e.g. an
    LSTM over (batch, steps, frames, features) gets its (frames,) mask per sample); the mask is
    also passed on unchanged.

    Folding gives Keras' result for every layer that treats samples independently (Dense, Conv,
    recurrent layers). It differs for BatchNormalization in training: Keras 3 calls the layer
    once per step, so it takes statistics over each step's batch and updates the moving averages
    once per step; here the statistics are over all batch·steps samples, updated once.

    Args:
        layer: the layer to apply (e.g. Dense), or its saved config.
    Input shape:  (batch, steps, ...)
    Output shape: (batch, steps, ...) with the trailing axes the layer gives
    """

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        self.layer = _layer_from(layer, "TimeDistributed")
        self.supports_masking = True

    def sublayers(self) -> list[Layer]:
        return [self.layer]

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) < 3:
            raise ValueError(f"TimeDistributed '{self.name}' expects an input of shape "
                             f"(batch, steps, ...), got shape {tuple(input_shape)}")
        if not self.layer.built:
            self.layer.build((input_shape[0] * input_shape[1],) + tuple(input_shape[2:]))
            self.layer.built = True

    def call(self, inputs: Tensor, training: bool = False, mask=None) -> Tensor:
        if inputs.ndim < 3:
            raise ValueError(f"TimeDistributed '{self.name}' expects an input of shape "
                             f"(batch, steps, ...), got shape {inputs.shape}")
        batch, steps = inputs.shape[:2]
        folded = F.reshape(inputs, (batch * steps,) + inputs.shape[2:])
        folded_mask = None
        if mask is not None:
            mask = mask.data if isinstance(mask, Tensor) else mask
            if mask.ndim < 2 or tuple(mask.shape[:2]) != (batch, steps):
                raise ValueError(f"TimeDistributed '{self.name}' expects a mask whose first two axes are "
                                 f"(batch, steps) = {(batch, steps)} for an input of shape {inputs.shape}, "
                                 f"got a mask of shape {tuple(mask.shape)}")
            folded_mask = mask.reshape((batch * steps,) + tuple(mask.shape[2:]))
        outputs = self.layer(folded, training=training, mask=folded_mask)
        return F.reshape(outputs, (batch, steps) + outputs.shape[1:])

    def get_config(self) -> dict:
        return {**super().get_config(), "layer": serialize_layer(self.layer)}
