"""What a model shows of its structure, as Keras' Model does: layers, inputs and outputs, their
names and shapes, ``get_layer``. A mixin of ``minidl.model.Model``, which sets ``graph`` (a
``minidl.model_graph.Graph``, or None for a subclassed model) and, for a subclassed model,
``built_input_shape`` and ``subclass_output_shape`` once it has been called.
"""
from __future__ import annotations

from minidl.layers.base import Layer
from minidl.layers.symbolic import SymbolicTensor
from minidl.output_losses import output_names_of


class ModelStructure:
    """The structure properties of a model (see the module docstring)."""

    graph = None
    built_input_shape: tuple | None = None
    subclass_output_shape: tuple | None = None
    subclass_input_shapes = None  # a subclassed model: the input shapes of its first call, in their structure
    single_input = True
    single_output = True

    @property
    def is_subclassed(self) -> bool:
        """Whether the model is a subclass with its own ``call`` rather than a graph of layers."""
        return type(self).call is not Layer.call

    @property
    def layers(self) -> list[Layer]:
        """The layers: a functional model's in Keras' order, its InputLayers included (as Keras);
        a subclassed model's in the order they were assigned."""
        return list(self.graph.layers) if self.graph is not None else self.sublayers()

    def sublayers(self) -> list[Layer]:
        if self.graph is not None:
            return list(self.graph.layers)
        found, seen = [], set()
        for value in vars(self).values():  # a subclass's layers are its attributes, as Keras tracks them
            for item in (value if isinstance(value, (list, tuple)) else [value]):
                if isinstance(item, Layer) and id(item) not in seen:
                    seen.add(id(item))
                    found.append(item)
        return found

    @property
    def inputs(self) -> list[SymbolicTensor]:
        return list(self.graph.inputs) if self.graph is not None else []

    @property
    def outputs(self) -> list[SymbolicTensor]:
        return list(self.graph.outputs) if self.graph is not None else []

    @property
    def input_names(self) -> list[str]:
        return [x.node.layer.name for x in self.inputs] if self.graph is not None else ["input"]

    @property
    def output_names(self) -> list[str]:
        if self.graph is None:
            return ["output"]
        return output_names_of([x.node.layer for x in self.graph.outputs])

    @property
    def input_shape(self):
        """(None, ...) of the input; a list of them for several inputs, as Keras."""
        if self.graph is None:
            if self.built_input_shape is None:
                raise AttributeError(f"model '{self.name}' has no input shape yet: it is not built")
            return self.built_input_shape
        shapes = [x.shape for x in self.graph.inputs]
        return shapes[0] if self.single_input else shapes

    @property
    def output_shape(self):
        """(None, ...) of the output; a list of them for several outputs, as Keras."""
        if self.graph is None:
            if self.subclass_output_shape is None:
                raise AttributeError(f"model '{self.name}' has no output shape yet: it is not built")
            return self.subclass_output_shape
        shapes = [x.shape for x in self.graph.outputs]
        return shapes[0] if self.single_output else shapes

    @property
    def output_shapes(self) -> list[tuple]:
        """The output shape of each layer in ``layers`` (its first call in the graph). A subclassed
        model, whose layers need not run as a chain, gives its output shape for each."""
        if self.graph is None:
            return [self.subclass_output_shape] * len(self.layers) if self.subclass_output_shape is not None else []
        first = {}
        for node in self.graph.nodes:
            first.setdefault(id(node.layer), node.outputs[0].shape)
        return [first[id(layer)] for layer in self.graph.layers]

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """The layer of that name, or at that index of ``layers``, as Keras' get_layer.

        Raises:
            ValueError: both or neither given, an index out of range, or no layer of that name
                (the message lists the names).
        """
        if (name is None) == (index is None):
            raise ValueError("get_layer: give exactly one of name= or index=")
        layers = self.layers
        if index is not None:
            if not isinstance(index, int) or not -len(layers) <= index < len(layers):
                raise ValueError(f"get_layer: index {index!r} is out of range for a model of {len(layers)} layers")
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"get_layer: no layer named {name!r}; the layers are {[layer.name for layer in layers]}")
