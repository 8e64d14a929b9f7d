"""InputLayer and ``Input``: where a model's graph starts.

``Input(shape)`` returns the symbolic tensor of a new InputLayer, as ``keras.Input`` does; layers
called on it record the graph that ``dl.Model(inputs, outputs)`` is built from. The first entry
of a ``Sequential`` may be that tensor or the InputLayer itself.
"""
from __future__ import annotations

from minidl.layers.base import Layer
from minidl.layers.symbolic import Node, SymbolicTensor, layer_nodes


class InputLayer(Layer):
    """Declares the shape of one sample (without the batch axis); passes inputs through after
    checking them.

    Args:
        shape: one sample's shape; None for an axis of any length (frames of speech).
        batch_shape: instead of shape, the shape with a leading batch axis (its size is not kept).
        name, dtype: as for any layer; dtype defaults to ``dl.backend.floatx()``.
    Attributes:
        output: the SymbolicTensor (None, *shape) that layers are called on.
        checks_shape: whether calls check the sample shape; a Sequential built from its first
            batch makes an InputLayer that does not, so it keeps taking other lengths as before.
    """

    def __init__(self, shape: tuple | None = None, batch_shape: tuple | None = None, **kwargs):
        kwargs.pop("input_shape", None)
        super().__init__(**kwargs)
        if (shape is None) == (batch_shape is None):
            raise ValueError(f"InputLayer '{self.name}': give exactly one of shape= or batch_shape=, got "
                             f"shape={shape!r}, batch_shape={batch_shape!r}")
        shape = tuple(batch_shape)[1:] if batch_shape is not None else tuple(shape)
        if not all(n is None or (isinstance(n, int) and not isinstance(n, bool) and n >= 0) for n in shape):
            raise ValueError(f"InputLayer '{self.name}': shape must hold ints >= 0 or None, got {shape!r}")
        self.shape = shape
        self.input_shape_arg = self.shape
        self.supports_masking = True
        self.built = True
        self.checks_shape = True
        node = Node(self, [], False, {})
        node.outputs = [SymbolicTensor((None,) + self.shape, self.dtype, node, 0, name=self.name)]
        layer_nodes(self).append(node)
        self.output = node.outputs[0]

    def call(self, inputs):
        expected = self.shape
        got = inputs.shape[1:]
        if self.checks_shape and (len(got) != len(expected)
                                  or any(e is not None and e != g for e, g in zip(expected, got))):
            raise ValueError(f"Input '{self.name}': expected samples of shape {expected}, "
                             f"got a batch of shape {inputs.shape}")
        return inputs

    def get_config(self):
        config = super().get_config()
        config.pop("input_shape", None)
        return {**config, "shape": list(self.shape)}


def Input(shape: tuple | None = None, name: str | None = None, dtype: str | None = None,  # noqa: N802
          batch_shape: tuple | None = None, batch_size: int | None = None, sparse: bool | None = None,
          tensor=None, optional: bool = False) -> SymbolicTensor:
    """A model's input, as ``keras.Input``: the symbolic tensor (None, *shape) of a new InputLayer.

    ``x = Input((20,)); y = layers.Dense(3)(x); model = dl.Model(x, y)``; also the first entry of
    ``Sequential([Input((20,)), ...])``. ``batch_size`` is accepted and not kept: a minidl model
    takes batches of any size.

    Raises:
        ValueError: sparse, tensor or optional inputs, which minidl does not support.
    """
    if sparse or tensor is not None or optional:
        raise ValueError("Input: sparse=, tensor= and optional= are not supported in minidl")
    layer = InputLayer(shape=shape, batch_shape=batch_shape, name=name, dtype=dtype)
    return layer.output
