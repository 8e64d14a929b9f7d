"""Layers to and from JSON: the registries of layer and model classes by name, and the two
functions that turn a layer into ``{"class_name": ..., "config": ...}`` and back.

    Dense(3, activation="tanh")  ──serialize_layer──►  {"class_name": "Dense",
                                 ◄─deserialize_layer─   "config": {"units": 3, "activation": "tanh", ...}}

Every ``Layer`` subclass enters ``LAYERS`` under its class name when it is defined (Layer's
``__init_subclass__``); model classes (``Sequential``) also enter ``MODELS`` by the
``register_model`` decorator, which is how ``minidl.saving`` finds them without importing
``minidl.models``. A config only names a registered class and gives its constructor
arguments, so rebuilding a layer from a file can never run code of the file's own.

A model file is untrusted: ``check_config_numbers`` bounds every integer in its JSON, and
while ``size_budget(...)`` is active, ``Sequential.build`` asks the budget before each layer is
built whether the sizes its config implies fit the file (``SizeBudget``), so a file saying
``"units": 1000000000`` is refused before anything is allocated.

This file imports nothing from minidl: the layers and models above it fill its registries.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
from typing import Any, Iterator, TypeVar

LAYERS: dict[str, type] = {}   # class name -> Layer subclass; filled by Layer.__init_subclass__
MODELS: dict[str, type] = {}   # class name -> model class; filled by register_model
MAX_DEPTH = 32  # nested wrapper layers; a config nesting deeper is refused, not recursed into
# Bounds on what a model file may ask for. Far above any model minidl trains (its digit models
# have units and filters in the tens to hundreds), far below what takes a machine down.
MAX_CONFIG_INT = 2 ** 24        # any integer in a file's JSON config: units, filters, paddings, shapes
MAX_TRIAL_ELEMENTS = 2 ** 26    # values in one sample's activation (256 MiB in float32) while building
BUDGET_SLACK = 2 ** 20          # weight values a build may create beyond twice the file's, see SizeBudget

ModelClass = TypeVar("ModelClass", bound=type)

# keras.layers classes minidl has not got: naming one (in a file, or as layers.X) says so plainly
KERAS_ONLY_LAYERS = frozenset((
    "ActivityRegularization", "AdditiveAttention", "AlphaDropout", "Attention", "AveragePooling3D",
    "CategoryEncoding", "CenterCrop", "Conv3D", "Conv3DTranspose",
    "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "Cropping3D",
    "Discretization", "EinsumDense", "GaussianDropout", "GlobalAveragePooling3D", "GlobalMaxPooling3D",
    "GroupNormalization", "GroupQueryAttention", "GRUCell", "Hashing", "Identity", "IntegerLookup", "LSTMCell",
    "MaxPooling3D", "MelSpectrogram", "RMSNormalization", "RNN", "Rescaling", "Resizing",
    "SimpleRNNCell", "SpatialDropout3D", "SpectralNormalization",
    "StackedRNNCells", "STFTSpectrogram", "StringLookup", "TextVectorization", "UnitNormalization",
    "UpSampling3D", "ZeroPadding3D"))


def register_model(cls: ModelClass) -> ModelClass:
    """Class decorator: let ``minidl.saving.load_model`` rebuild models of this class by name.

    The class must have ``from_saved_layers(layers, config)``, as Model and Sequential do; it is also a Layer, so it is
    in LAYERS already (a Sequential may be nested inside another).
    """
    MODELS[cls.__name__] = cls
    return cls


def register_serializable(package: str = "Custom", name: str | None = None):
    """Class decorator, Keras' ``keras.saving.register_keras_serializable``: let files name this
    class. A Layer subclass is known by its class name already; a Model subclass (with its own
    ``call`` and a ``get_config`` giving its constructor arguments) can then be saved with its
    architecture and loaded by ``load_model`` / ``model_from_json``. Only classes registered in
    this process (or passed as ``custom_objects``) are ever built: a file names, it never imports.

    Args:
        package: accepted for Keras' signature; minidl's files name a class by its name alone.
        name: must be None or the class's own name (a file names the class by it).
    """
    def register(cls: ModelClass) -> ModelClass:
        if name is not None and name != cls.__name__:
            raise ValueError(f"register_serializable: minidl names {cls.__name__} in files by its class name; "
                             f"a different name= ({name!r}) is not supported")
        if hasattr(cls, "from_saved_layers"):  # a model class: Model and its subclasses
            MODELS[cls.__name__] = cls
        LAYERS[cls.__name__] = cls
        return cls
    return register


def is_layer(value: Any) -> bool:
    """Whether ``value`` is an instance of a registered layer class (every Layer subclass is)."""
    return not isinstance(value, dict) and isinstance(value, tuple(LAYERS.values()))


def serialize_layer(layer) -> dict:
    """``{"class_name": ..., "config": layer.get_config()}``: what deserialize_layer reads back."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize_layer(entry, depth: int = 0):
    """A layer rebuilt from ``{"class_name": name, "config": {...}}``.

    The class must be registered (every Layer subclass is, by class name); the config gives the
    constructor arguments. A nested ``{"class_name", "config"}`` under the key "layer" (the
    wrapped layer of Bidirectional, TimeDistributed) is rebuilt first, and so is each entry of
    a "layers" list (a Sequential nested as a layer). A layer given instead of a dict is
    returned as is, so wrappers may call this on either.

    Args:
        entry: the dict (as from ``json.loads``), or a layer.
        depth: how deep this call is in nested configs; callers leave it at 0.
    Raises:
        ValueError: not such a dict, nested deeper than MAX_DEPTH, an unknown class name (the
            message lists the known ones), or arguments the class does not accept.
    """
    if is_layer(entry):
        return entry
    if depth > MAX_DEPTH:
        raise ValueError(f"layer config nested deeper than {MAX_DEPTH} levels")
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str) \
            or not isinstance(entry.get("config", {}), dict):
        raise ValueError(f"a layer entry must be {{'class_name': str, 'config': dict}}, got {short_repr(entry)}")
    name = entry["class_name"]
    cls = LAYERS.get(name)
    if cls is None and name in KERAS_ONLY_LAYERS:
        raise ValueError(f"the Keras layer {name!r} is not supported by minidl; known layers: "
                         f"{', '.join(sorted(LAYERS))}")
    if cls is None:
        raise ValueError(f"unknown layer class {name!r}; known layers: {', '.join(sorted(LAYERS))}")
    config = dict(entry.get("config", {}))
    nested = config.get("layer")
    if isinstance(nested, dict) and "class_name" in nested:
        config["layer"] = deserialize_layer(nested, depth + 1)
    if isinstance(config.get("layers"), list):  # a Sequential nested as a layer
        config["layers"] = [deserialize_layer(e, depth + 1) for e in config["layers"]]
    try:
        return cls.from_config(config)
    except Exception as error:  # any failure of a constructor is a bad file, said plainly
        raise ValueError(f"cannot rebuild layer {name} from its config {short_repr(config)}: {error}") from error


def short_repr(value: Any, limit: int = 200) -> str:
    """``repr(value)``, cut to ``limit`` characters: a config quoted in an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# --- bounds on what a model file may make us allocate ----------------------------------------
def check_config_numbers(config: Any, where: str = "config") -> None:
    """Refuse a JSON config holding an integer above MAX_CONFIG_INT in size, anywhere in it.

    Walks dicts and lists without recursion (a file may nest them deeply).

    Raises:
        ValueError: naming the key path of the first such integer and the bound.
    """
    stack = [(where, config)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{path}.{key}", item) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_CONFIG_INT:
            raise ValueError(f"{path} is {short_repr(value, 40)}, beyond the bound of {MAX_CONFIG_INT:,} "
                             f"on any size in a model file")


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _trial_shape(input_shape: tuple) -> list[int]:
    """The shape of the batch-1 trial input that Layer.compute_output_shape builds with."""
    return [1 if n is None else int(n) for n in input_shape]


def weight_lower_bound(config: dict, input_shape: tuple) -> int:
    """At least how many weight values a layer with ``config`` creates for ``input_shape``.

    A lower bound read off Keras' size arguments, so that it never refuses a real file:
    "units" makes a kernel (input_dim, k * units) with k >= 1 (Dense, SimpleRNN, LSTM, GRU);
    "filters" a kernel kernel_size + (channels, filters), but with "depth_multiplier" m (the
    depthwise and separable convolutions) kernel_size + (channels, m), plus (channels·m, filters)
    when there are filters; a wrapped "layer" / "backward_layer"
    (Bidirectional, TimeDistributed) sees the same last axis. Other layers count as 0.
    """
    trial = _trial_shape(input_shape)
    in_last = max(trial[-1], 1) if trial else 1
    total = 0
    if _is_count(config.get("units")):
        total += config["units"] * in_last
    kernel = config.get("kernel_size")
    kernel = kernel if isinstance(kernel, list) and all(_is_count(k) for k in kernel) else [1]
    if _is_count(config.get("depth_multiplier")):
        # depthwise (+ separable's pointwise): kernel_size + (channels, m), then (channels·m, filters)
        multiplier = config["depth_multiplier"]
        total += math.prod(kernel) * in_last * multiplier
        if _is_count(config.get("filters")):
            total += in_last * multiplier * config["filters"]
    elif _is_count(config.get("filters")):
        total += config["filters"] * math.prod(kernel) * in_last
    for key in ("layer", "backward_layer"):
        nested = config.get(key)
        if isinstance(nested, dict) and isinstance(nested.get("config"), dict):
            total += weight_lower_bound(nested["config"], input_shape)
    return total


def output_lower_bound(config: dict, input_shape: tuple) -> int:
    """At least how many values the batch-1 trial output of a layer with ``config`` holds.

    "units": (steps, units), or (units,) with return_sequences=False; a numeric "padding"
    (ZeroPadding1D/2D, channels last): every padded axis grows by its pads; a "size"
    (UpSampling1D/2D): every axis times its factor; "filters" with "output_padding"
    (Conv1D/2DTranspose): Keras' transposed output length per axis. Others count as 0.
    """
    trial = _trial_shape(input_shape)
    if not trial:
        return 0
    elements, in_last = math.prod(trial), max(trial[-1], 1)
    bound = 0
    if _is_count(config.get("units")):
        bound = config["units"] if config.get("return_sequences") is False else elements // in_last * config["units"]
    padding = config.get("padding")
    if isinstance(padding, list) and padding and all(isinstance(p, int) for p in padding):
        padding = [padding]  # ZeroPadding1D's (before, after)
    if (isinstance(padding, list) and len(padding) == len(trial) - 2
            and all(isinstance(p, list) and all(isinstance(n, int) and n >= 0 for n in p) for p in padding)):
        bound = max(bound, math.prod(n + sum(p) for n, p in zip(trial[1:-1], padding)) * trial[-1])
    spatial = trial[1:-1]
    size = config.get("size")
    size = [size] if _is_count(size) else size
    if isinstance(size, list) and len(size) == len(spatial) and all(_is_count(n) for n in size):
        bound = max(bound, math.prod(n * f for n, f in zip(spatial, size)) * trial[-1])
    if _is_count(config.get("filters")) and "output_padding" in config:
        bound = max(bound, _transpose_output_values(config, spatial))
    for key in ("layer", "backward_layer"):
        nested = config.get(key)
        if isinstance(nested, dict) and isinstance(nested.get("config"), dict):
            bound = max(bound, output_lower_bound(nested["config"], input_shape))
    return bound


def _transpose_output_values(config: dict, spatial: list[int]) -> int:
    """Values of a transposed convolution's trial output, from Keras' output length per axis
    (as minidl.functional.conv_transpose.transpose_output_length; restated here, since this
    file imports nothing from minidl); 0 for a config that is not well formed."""
    rank = len(spatial)
    values = []
    for key in ("kernel_size", "strides", "dilation_rate", "output_padding"):
        value = config.get(key)
        value = [value] * rank if isinstance(value, int) or value is None else value
        if not isinstance(value, list) or len(value) != rank or not all(
                v is None or (isinstance(v, int) and v >= 0) for v in value):
            return 0
        values.append(value)
    total = config["filters"]
    for n, k, s, d, extra in zip(spatial, *values):
        if k is None or s is None or d is None:
            return 0
        span = (k - 1) * d + 1
        if config.get("padding") == "same":
            total *= max(n * s if extra is None else (n - 1) * s + span % 2 + extra, 0)
        else:
            total *= max((n - 1) * s + (max(span, s) if extra is None else span + extra), 0)
    return total


class SizeBudget:
    """What building a model read from a file may allocate: the weight values the file holds.

    ``Sequential.build`` calls ``before(layer, input_shape)`` ahead of each layer's trial
    call and ``after(layer, output_shape)`` once it is built. Before: the trial input, and the
    lower bounds of the layer's weights and trial output (``weight_lower_bound``,
    ``output_lower_bound``), must fit. After: the weights created so far must not exceed the
    file's, nor the output MAX_TRIAL_ELEMENTS (this stops a layer unknown to the lower bounds
    from feeding a blown-up shape to the next).

    The limit is twice the file's weights plus BUDGET_SLACK, not the exact count: a file that
    is merely wrong (a shape off by one) gets the clearer message of the shape check that
    follows the build, while building stays bounded by the file's size.

    Args:
        weight_elements: the number of weight values the file's members declare.
    """

    def __init__(self, weight_elements: int):
        self.weight_elements = weight_elements
        self.limit = 2 * weight_elements + BUDGET_SLACK
        self.allocated = 0
        self._seen: set[int] = set()  # weight ids counted: a nested Sequential's are its layers'

    @staticmethod
    def _describe(layer, config: dict | None = None) -> str:
        """``layer 'dense_1' (Dense, units=5)``: the layer and the sizes its config gives."""
        sizes = ", ".join(f"{key}={config[key]!r}" for key in ("units", "filters", "kernel_size", "padding")
                          if key in config) if config else ""
        return f"layer {layer.name!r} ({type(layer).__name__}{', ' + sizes if sizes else ''})"

    def before(self, layer, input_shape: tuple) -> None:
        """Refuse building ``layer`` on ``input_shape`` if its config asks for more than fits.

        Raises:
            ValueError: naming the layer, what it would need and the bound.
        """
        trial = math.prod(_trial_shape(input_shape))
        if trial > MAX_TRIAL_ELEMENTS:
            raise ValueError(f"{self._describe(layer)} would be built on an input of shape {tuple(input_shape)} "
                             f"({trial:,} values a sample), beyond the bound of {MAX_TRIAL_ELEMENTS:,}")
        config = layer.get_config()
        # a layer built already (a rebuild for another input shape) has its weights counted
        weights = 0 if getattr(layer, "built", False) else weight_lower_bound(config, input_shape)
        if self.allocated + weights > self.limit:
            raise ValueError(f"{self._describe(layer, config)} would create at least {weights:,} weight "
                             f"values on input shape {tuple(input_shape)}, but the file holds "
                             f"{self.weight_elements:,} in all ({self.allocated:,} used by the layers before it)")
        output = output_lower_bound(config, input_shape)
        if output > MAX_TRIAL_ELEMENTS:
            raise ValueError(f"{self._describe(layer, config)} would give at least {output:,} values a "
                             f"sample on input shape {tuple(input_shape)}, beyond the bound of {MAX_TRIAL_ELEMENTS:,}")

    def after(self, layer, output_shape: tuple) -> None:
        """Count the weights ``layer`` created; refuse once they pass the file's or the output is too big.

        Raises:
            ValueError: naming the layer and the counts.
        """
        for weight in layer.weights:
            if id(weight) not in self._seen:
                self._seen.add(id(weight))
                self.allocated += int(weight.size)
        if self.allocated > self.limit:
            raise ValueError(f"{self._describe(layer)} brings the weights built to {self.allocated:,} values, "
                             f"but the file holds {self.weight_elements:,}")
        trial = math.prod(_trial_shape(output_shape))
        if trial > MAX_TRIAL_ELEMENTS:
            raise ValueError(f"{self._describe(layer)} gives outputs of shape {tuple(output_shape)} "
                             f"({trial:,} values a sample), beyond the bound of {MAX_TRIAL_ELEMENTS:,}")


_size_budget: contextvars.ContextVar[SizeBudget | None] = contextvars.ContextVar("minidl_size_budget",
                                                                                 default=None)


@contextlib.contextmanager
def size_budget(weight_elements: int) -> Iterator[SizeBudget]:
    """Within this block, models built by Sequential.build are held to a SizeBudget.

    ``minidl.saving.load_model`` builds a model from a file inside it; code building its own
    models is never limited. A context variable, so threads and nested loads keep their own.
    """
    token = _size_budget.set(SizeBudget(weight_elements))
    try:
        yield _size_budget.get()
    finally:
        _size_budget.reset(token)


def current_size_budget() -> SizeBudget | None:
    """The SizeBudget of the enclosing ``size_budget`` block, or None outside one."""
    return _size_budget.get()
