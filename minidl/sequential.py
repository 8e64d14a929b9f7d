"""Sequential: a functional model whose graph is a chain, kept as the list of its layers.

``Sequential([Input((20,)), Dense(16), Dense(3)])`` is ``Model(x, Dense(3)(Dense(16)(x)))`` with
``x = Input((20,))``: ``build`` calls each layer on the symbolic output of the one before (which
builds its weights), and the model runs, trains and saves as any ``minidl.model.Model``. What
is Sequential's own is the list: ``add``, ``pop``, and a model that may be built later, from its
first batch, when no layer declares the input shape.

``layers`` leaves out the InputLayer, as in Keras; the config keeps it when one was given, so
``get_config`` and files are as before.
"""
from __future__ import annotations

from typing import Iterable

from minidl.layers.base import Layer, unique_name
from minidl.layers.input_layer import InputLayer
from minidl.layers.serialization import deserialize_layer, register_model, serialize_layer
from minidl.layers.symbolic import SymbolicTensor, call_symbolic, is_symbolic
from minidl.model import Model
from minidl.model_graph import Graph


@register_model  # so that minidl.saving.load_model can rebuild it by name
class Sequential(Model):
    """A linear stack of layers, as ``keras.Sequential``.

    Args:
        layers: the layers in order; the first may be ``layers.Input(shape)`` (or an InputLayer)
            or carry ``input_shape=``, so the model is built (and ``summary()`` works) at once.
        name: the model's name.
    """

    shows_connections = False  # summary(): one row a layer, as Keras prints a Sequential
    is_subclassed = False  # its call is its chain's, not a subclass's own

    def __init__(self, layers: Iterable[Layer] | None = None, name: str | None = None):
        super().__init__(name=name or unique_name("sequential"))
        self.stack: list[Layer] = []
        self.input_layer: InputLayer | None = None   # the one the user gave, if any
        self.chain_output: SymbolicTensor | None = None
        self.chain_shapes: list[tuple] = []
        for layer in layers or []:
            self._append(layer)
        # built once, after all layers are in: add() per layer made a trial call through the
        # whole stack each time, quadratic in the depth (see test_saving_hostile's 2,000 layers)
        if self.input_layer is not None:
            self.build((None,) + self.input_layer.shape)
        elif self.stack and self.stack[0].input_shape_arg is not None:
            self.build((None,) + tuple(self.stack[0].input_shape_arg))

    def _append(self, layer) -> None:
        if isinstance(layer, SymbolicTensor):
            if not isinstance(layer.node.layer, InputLayer):
                raise TypeError("Sequential: only a layers.Input(...) tensor may be given instead of a layer")
            layer = layer.node.layer
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a Layer, got {type(layer).__name__}")
        if isinstance(layer, InputLayer):
            if self.stack or self.input_layer is not None:
                raise ValueError(f"Sequential: an InputLayer ('{layer.name}') may only come first")
            self.input_layer = layer
            return
        self.stack.append(layer)

    # --- structure ---------------------------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        """The layers in order, without the InputLayer (as Keras)."""
        return list(self.stack)

    def sublayers(self) -> list[Layer]:
        return list(self.stack)

    @property
    def output_shapes(self) -> list[tuple]:
        """The output shape after each layer (built from the first batch: none yet recorded)."""
        return list(self.chain_shapes)

    @property
    def graph(self) -> Graph | None:
        """The chain as a Graph, made when first needed after the layers change."""
        if self.chain_output is None:
            return None
        if self.cached_graph is None:
            self.cached_graph = Graph(self.chain_input, self.chain_output)
        return self.cached_graph

    @graph.setter
    def graph(self, value) -> None:  # Model.__init__ sets None; Sequential makes its own
        self.cached_graph = value

    def add(self, layer: Layer) -> None:
        """Append a layer; builds the model when the first layer declares its input shape, and
        builds just the new layer when the model is built already."""
        was_empty = not self.stack and self.input_layer is None
        self._append(layer)
        if self.chain_output is not None and self.stack and self.stack[-1] is layer:
            self._extend(layer)
        elif was_empty and self.input_layer is not None:
            self.build((None,) + self.input_layer.shape)
        elif was_empty and self.stack and layer.input_shape_arg is not None:
            self.build((None,) + tuple(layer.input_shape_arg))

    def pop(self) -> Layer:
        """Remove and return the last layer, as Keras 3 (the model is rebuilt without it)."""
        if not self.stack:
            raise ValueError(f"Sequential '{self.name}'.pop: there are no layers in the model")
        layer = self.stack.pop()
        if self.built_input_shape is not None and self.chain_output is not None:
            self.build(self.built_input_shape)
        return layer

    def build(self, input_shape: tuple) -> None:
        """Create every layer's weights for inputs of ``input_shape`` (batch axis first, may be None)."""
        input_shape = tuple(input_shape)
        declared = self.input_layer
        if declared is not None and (None,) + declared.shape == (None,) + tuple(input_shape[1:]):
            start = declared
        else:  # built from a batch, or for another shape: an InputLayer of our own that takes any length
            start = InputLayer(shape=input_shape[1:], dtype=self.stack[0].dtype if self.stack else None)
            start.checks_shape = False
        self.chain_input = start.output
        self.chain_output, self.chain_shapes = start.output, []
        for layer in self.stack:
            self._extend(layer)
        self.built_input_shape = (None,) + tuple(input_shape[1:]) if input_shape[0] is None else input_shape
        self.built = True

    def _extend(self, layer: Layer) -> None:
        output = layer(self.chain_output)
        if not isinstance(output, SymbolicTensor):
            raise ValueError(f"Sequential: layer '{layer.name}' returns {len(output)} outputs; a Sequential "
                             f"takes layers of one output (use Model(inputs, outputs) instead)")
        self.chain_output = output
        self.chain_shapes.append(output.shape)
        self.cached_graph = None

    def __call__(self, inputs, training: bool | None = None, mask=None, **kwargs):
        if is_symbolic(inputs):  # a Sequential nested in another model
            return call_symbolic(self, inputs, training, kwargs)
        x = self._prepare(inputs)
        if mask is not None:
            x.mask = mask
        if self.chain_output is None:
            self.build((None,) + tuple(x.shape[1:]))
        return self.graph.run([x], training)[0]

    call = __call__

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        if self.chain_output is None or tuple(input_shape[1:]) != tuple(self.built_input_shape[1:]):
            self.build(input_shape)
        return (input_shape[0],) + tuple(self.chain_output.shape[1:])

    def get_config(self) -> dict:
        first = [serialize_layer(self.input_layer)] if self.input_layer is not None else []
        return {"name": self.name, "layers": first + [serialize_layer(layer) for layer in self.stack]}

    @classmethod
    def from_config(cls, config: dict) -> "Sequential":
        return cls([deserialize_layer(entry) for entry in config["layers"]], name=config.get("name"))

    @classmethod
    def from_saved_layers(cls, layers: list, config: dict) -> "Sequential":
        name = config.get("name")
        return cls(layers, name=name if isinstance(name, str) else None)

    # a Sequential's input is one tensor, its output one
    input_names = property(lambda self: [self.input_layer.name if self.input_layer is not None else "input"])
    output_names = property(lambda self: [self.stack[-1].name if self.stack else "output"])
