"""Model: Keras' compile / fit / evaluate / predict / summary, for any graph of layers.

A ``Model`` is one of three kinds, as in Keras, and all three train alike:

    Model(inputs, outputs)        functional: the graph recorded by calling layers on layers.Input
    class Net(Model): def call    subclassed: ``call`` says what happens, run eagerly
    Sequential([...])             a functional model whose graph is a chain (minidl.sequential)

Training one batch is the whole story of supervised learning in four lines (``_train_step``):

    y_pred = model(x, training=True)                 forward, building the graph
    loss = Σ_k w_k · loss_k(y_k, ŷ_k) + Σ penalties   one term per output (minidl.output_losses)
    loss.backward()                                  gradients of every weight
    optimizer.apply(model.trainable_weights)         update, then clear the gradients

Around that step stand the loops over whole data sets (fit, evaluate, predict) with the
bookkeeping Keras users expect: metrics averaged over an epoch, validation, callbacks. The
loops are ``minidl.training``'s, one fit loop for every kind of model (with the argument
checks, the NaN guard of a step and the progress display); the batches they walk (shuffling,
the validation split, class weights, steps) come from ``minidl.batches``, several inputs or
outputs lined up by ``minidl.multi_io``. Saving is
``minidl.saving``'s; the graph itself is ``minidl.model_graph``'s.
"""
from __future__ import annotations

import inspect
import numpy as np

from minidl import optimizers, saving, training
from minidl.batches import (class_weight_table, data_batches, in_order, on_device, sample_weights,
                            weights_in_order)
from minidl.function import no_grad
from minidl.layers.base import Layer, unique_name
from minidl.layers.serialization import register_model
from minidl.layers.symbolic import call_symbolic, is_symbolic, shape_trial
from minidl.model_graph import Graph
from minidl.model_io import model_to_json
from minidl.model_structure import ModelStructure
from minidl.model_summary import print_summary, summary_rows
from minidl.multi_io import line_up
from minidl.output_losses import CompiledOutputs
from minidl.tensor import Tensor, as_tensor
from minidl.training import check_batch_size, non_finite_problem, positive_int, unpack


@register_model  # so that minidl.saving.load_model can rebuild it by name
class Model(ModelStructure, Layer):
    """A model, as ``keras.Model``: ``Model(inputs, outputs)``, or subclassed with a ``call``.

    Args:
        inputs: a symbolic tensor from ``layers.Input``, or a list of them.
        outputs: the symbolic tensor(s) computed from them, one or a list.
        name: the model's name ("functional", numbered, by default; a subclass: its class name).
    Without inputs and outputs the model is subclassed: define ``call(self, x, training=False)``
    and assign its layers as attributes in ``__init__``.
    """

    def __init__(self, inputs=None, outputs=None, name: str | None = None, **kwargs):
        if (inputs is None) != (outputs is None):
            raise ValueError("Model: give both inputs and outputs (a functional model), or neither (a subclassed "
                             "model with a call method)")
        functional = inputs is not None
        super().__init__(name=name or (unique_name("functional") if functional else None), **kwargs)
        self.optimizer = None
        self.loss = None
        self.compiled: CompiledOutputs | None = None
        self.metric_names: list[str] = []
        self.stop_training = False
        self.terminate_on_nan = True
        self.history = None
        self.built_input_shape: tuple | None = None
        self.graph: Graph | None = None
        if functional:
            self._set_graph(Graph(inputs, outputs), single_input=not isinstance(inputs, (list, tuple)),
                            single_output=not isinstance(outputs, (list, tuple)))

    def _set_graph(self, graph: Graph, single_input: bool = True, single_output: bool = True) -> None:
        self.graph = graph
        self.single_input = single_input and len(graph.inputs) == 1
        self.single_output = single_output and len(graph.outputs) == 1
        self.built_input_shape = graph.inputs[0].shape
        self.built = True

    def build(self, input_shape: tuple) -> None:
        """Build the weights for inputs of ``input_shape`` (batch axis first, may be None): a
        functional model is built already; a subclassed one runs a trial call on zeros."""
        if self.graph is not None:
            return
        trial = tuple(1 if n is None else n for n in input_shape)
        with no_grad(), shape_trial():
            self(Tensor(np.zeros(trial, dtype=self.dtype)))
        self.built_input_shape = tuple(input_shape)

    def __call__(self, inputs, training: bool | None = None, mask=None, **kwargs):
        if is_symbolic(inputs):  # a model used as a layer inside another graph
            return call_symbolic(self, inputs, training, kwargs)
        if self.graph is None:
            return self._call_subclassed(inputs, training, kwargs)
        values = line_up(inputs, self.input_names, "inputs", f"model '{self.name}'")
        values = [inputs] if values is None else values
        if mask is not None:
            values[0] = as_tensor(values[0])
            values[0].mask = mask
        outputs = self.graph.run(values, training)
        return outputs[0] if self.single_output else outputs

    def _call_subclassed(self, inputs, training, kwargs):
        if type(self).call is Layer.call:
            raise NotImplementedError(f"model '{self.name}' has neither a graph (Model(inputs, outputs)) nor a "
                                      f"call method; subclass Model and define call(self, x, training=False)")
        if isinstance(inputs, dict):  # call gets the structure it was given, as in Keras
            x = {key: self._prepare(value) for key, value in inputs.items()}
        elif isinstance(inputs, (list, tuple)):
            x = [self._prepare(value) for value in inputs]
        else:
            x = self._prepare(inputs)
        if "training" in inspect.signature(self.call).parameters:
            kwargs["training"] = bool(training)
        out = self.call(x, **kwargs)
        if not self.built:
            first = next(iter(x.values())) if isinstance(x, dict) else x[0] if isinstance(x, list) else x
            self.built_input_shape = (None,) + tuple(first.shape[1:])
            self.subclass_input_shapes = _shapes_of(x)  # what a saved subclassed model is rebuilt with
            shown = out[0] if isinstance(out, (list, tuple)) else out
            self.subclass_output_shape = (None,) + tuple(shown.shape[1:])
            self.built = True
        return out

    def to(self, device: str) -> "Model":
        """Move every weight to "cpu" or "gpu"; data given to fit/predict follows the weights."""
        for layer in self.sublayers():
            layer.to(device)
        if self.optimizer is not None and hasattr(self.optimizer, "reset"):
            self.optimizer.reset()
        return self

    def reset_states(self) -> None:
        """Zero the states carried by every stateful recurrent layer of the model, nested models
        and Bidirectional wrappers included (tf.keras 2's ``Model.reset_states``; Keras 3 has
        only the layers' ``reset_state``, and this calls the same on each). Layers that are not
        stateful are left alone; so is a model without any."""
        for layer in self.layers:
            if isinstance(layer, Model):
                layer.reset_states()
            elif getattr(layer, "stateful", False) and hasattr(layer, "reset_states"):
                layer.reset_states()

    def reset_state(self) -> None:
        """Keras 3's name (on a recurrent layer) for ``reset_states``."""
        self.reset_states()

    def get_config(self) -> dict:
        if self.graph is None:
            raise NotImplementedError(f"model '{self.name}' is subclassed: saving its architecture needs its class "
                                      f"registered (@dl.saving.register_serializable()) with a get_config() "
                                      f"of its constructor arguments; save_weights() works without")
        return {"name": self.name, **self.graph.get_config(self.single_input, self.single_output)}

    @classmethod
    def from_config(cls, config: dict) -> "Model":
        """A functional model from its graph config; a subclassed one as ``cls(**config)``."""
        if cls.call is not Layer.call:
            return cls(**config)
        inputs, outputs = Graph.from_config(config)
        return cls(inputs, outputs, name=config.get("name"))

    @classmethod
    def from_saved_layers(cls, layers: list, config: dict) -> "Model":
        """The model a file's config describes, its layers rebuilt already (minidl.saving)."""
        inputs, outputs = Graph.from_config(config, layers)
        name = config.get("name")
        return cls(inputs, outputs, name=name if isinstance(name, str) else None)

    def to_json(self) -> str:
        """The architecture as JSON (no weights), read back by ``minidl.models.model_from_json``."""
        return model_to_json(self)

    # --- training set-up -----------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics: list | dict | None = None,
                loss_weights: list | dict | None = None, terminate_on_nan: bool = True) -> None:
        """Choose the optimizer, the loss and the metrics reported during fit/evaluate.

        Args:
            optimizer: a name ("adam", "sgd", "rmsprop", "adamw") or an Optimizer.
            loss: a Keras loss name, a ``minidl.losses.Loss`` or a per-sample loss function; with
                several outputs also a list (in output order) or a dict by output name.
            metrics: names such as "accuracy" (resolved by the loss, as Keras does); with several
                outputs a list of lists or a dict by output name.
            loss_weights: with several outputs, the weight of each output's loss (list or dict).
            terminate_on_nan: stop fit with an error when the loss is not finite (Keras'
                TerminateOnNaN callback, on by default here).
        """
        if loss is None:
            raise ValueError("compile: a loss is needed, e.g. loss='sparse_categorical_crossentropy'")
        self.optimizer = optimizers.get(optimizer)
        self.compiled = CompiledOutputs(loss, loss_weights, metrics, self.output_names)
        self.loss = self.compiled.losses if self.compiled.several else self.compiled.losses[0]
        self.metric_names = self.compiled.metric_names
        self.terminate_on_nan = terminate_on_nan

    def _check_compiled(self, where: str) -> None:
        if self.loss is None:
            raise RuntimeError(f"{where}: call model.compile(optimizer, loss) first")

    # --- one batch -----------------------------------------------------------------------------
    def _per_output(self, y, y_pred) -> tuple[list, list]:
        if not self.compiled.several:
            return [y], [y_pred]
        return line_up(y, self.output_names, "outputs", "the loss"), list(y_pred)

    def _total_loss(self, y, y_pred, sample_weight) -> Tensor:
        loss = self.compiled.total_loss(*self._per_output(y, y_pred), sample_weight)
        penalty = self.regularization_loss()
        return loss if penalty is None else loss + penalty

    def _on_device(self, x, y, where: str):
        """One batch's x and y lined up with the model's inputs and outputs, on its device."""
        x, y = in_order(self, x, y, where)
        return on_device(self, x), on_device(self, y)

    def train_on_batch(self, x, y, sample_weight=None, class_weight: dict | None = None,
                       return_dict: bool = False):
        """One gradient step on one batch; returns the loss (and metrics) on that batch, as Keras."""
        self._check_compiled("train_on_batch")
        class_weight = class_weight_table(class_weight, "train_on_batch")
        x, y = self._on_device(x, y, "train_on_batch")
        if class_weight is not None and isinstance(y, list):
            raise ValueError("train_on_batch: class_weight is not supported for a model of several outputs "
                             "(as in Keras); use sample_weight")
        sample_weight = on_device(self, weights_in_order(self, sample_weight, "train_on_batch"))
        sample_weight = sample_weights(self, y, sample_weight, class_weight, "train_on_batch")
        y_pred, loss, _ = self._train_step(x, y, sample_weight)  # Keras' train_on_batch never stops on NaN
        logs = self._logs(loss, y, y_pred)
        return logs if return_dict else unpack(logs)

    def _train_step(self, x, y, sample_weight, check_finite: bool = False):
        """One step: (predictions, loss, problem). With ``check_finite``, a loss or a gradient
        that is NaN or inf is found *before* the update, which is then not made: problem says
        which, and every weight is as it was before the step. Otherwise problem is None."""
        # The forward pass moves BatchNormalization's statistics in place, so a step that is
        # refused must put them back: a copy of the non-trainable weights (small, as a rule).
        saved = [(w, w.data.copy()) for w in self.non_trainable_weights] if check_finite else []
        y_pred = self(x, training=True)
        loss = self._total_loss(y, y_pred, sample_weight)
        loss.backward()
        value = float(loss.data)
        problem = non_finite_problem(value, self.trainable_weights) if check_finite else None
        if problem is not None:
            for weight, data in saved:
                weight.data = data
            for weight in self.trainable_weights:
                weight.grad = None
            return y_pred, value, problem
        self.optimizer.apply(self.trainable_weights)
        return y_pred, value, None

    def test_on_batch(self, x, y, sample_weight=None, return_dict: bool = False):
        """The loss (and metrics) on one batch, without training."""
        self._check_compiled("test_on_batch")
        x, y = self._on_device(x, y, "test_on_batch")
        sample_weight = on_device(self, weights_in_order(self, sample_weight, "test_on_batch"))
        with no_grad():
            y_pred = self(x, training=False)
            loss = float(self._total_loss(y, y_pred, sample_weight).data)
        logs = self._logs(loss, y, y_pred)
        return logs if return_dict else unpack(logs)

    def predict_on_batch(self, x):
        """The outputs for one batch, as NumPy (a list of arrays for several outputs)."""
        return self._predict_batch(self._on_device(x, None, "predict_on_batch")[0])

    def _logs(self, loss: float, y, y_pred) -> dict:
        # the per-output losses are those of the _total_loss call of this same batch
        return self.compiled.logs(loss, *self._per_output(y, y_pred))

    # --- whole data sets -----------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size: int | None = None, epochs: int = 1, verbose="auto",
            callbacks: list | None = None, validation_split: float = 0.0, validation_data=None,
            shuffle: bool = True, class_weight: dict | None = None, sample_weight=None,
            initial_epoch: int = 0, steps_per_epoch: int | None = None, validation_steps: int | None = None,
            validation_batch_size: int | None = None, validation_freq=1):
        """Train for ``epochs`` passes over the data, as ``keras.Model.fit`` (``minidl.training.fit_loop``).

        Args:
            x: inputs (batch, ...), a list or dict of them for several inputs, or a
                ``minidl.data.Sequence``, a generator, or any iterable of (x, y[, weight])
                batches such as a torch DataLoader.
            y: targets (integer labels or one-hot rows, as the loss wants); a list or dict for
                several outputs.
            batch_size: samples per step (32 when omitted, as Keras).
            validation_split: the LAST fraction of x, y held out before shuffling (as Keras).
            validation_data: (x_val, y_val) or (x_val, y_val, weights), or a Sequence, generator
                or DataLoader of batches; validated every ``validation_freq`` epochs (an int, or
                a list of 1-based epochs), in batches of ``validation_batch_size`` (default
                batch_size), ``validation_steps`` of them (default: all).
            steps_per_epoch: batches per epoch; the next epoch goes on where the last stopped
                (``minidl.batches`` says how each kind of data is walked, as in Keras).
            epochs: a positive int, the index of the epoch to end at (as Keras).
            class_weight: {class index: weight >= 0} multiplying each sample's loss; every key
                must be one of the labels' classes.
            sample_weight: (samples,) weights of each sample's loss, shared by every output; with
                several outputs also a list (output order) or a dict by output name of one array
                per output, as Keras (a dict works for a model of list outputs too).
            verbose: 0 silent, 1 a progress bar per epoch, 2 one line per epoch (on stderr).
                "auto" is 1 when stderr is a terminal and 2 otherwise (a log file gets a line an
                epoch, not thousands of carriage returns); Keras' "auto" is always 1.
        Returns:
            A History callback; ``history.history`` maps "loss", metrics and "val_*" to lists.
        Raises:
            ValueError: a bad argument (batch_size, epochs, verbose, class_weight, ...), named.
            FloatingPointError: the loss, or a gradient, became NaN or inf (naming which, and the
                epoch and batch), unless compile(terminate_on_nan=False). The step is not applied:
                the model keeps the weights it had before that batch.
        """
        self._check_compiled("fit")
        return training.fit_loop(self, x, y, batch_size, epochs, verbose, callbacks, validation_split,
                                 validation_data, shuffle, class_weight, sample_weight, initial_epoch,
                                 steps_per_epoch, validation_steps, validation_batch_size, validation_freq)

    def evaluate(self, x=None, y=None, batch_size: int | None = None, verbose="auto",
                 sample_weight=None, steps: int | None = None, callbacks: list | None = None,
                 return_dict: bool = False):
        """Loss and metrics over a whole data set (or ``steps`` batches of it): ``[loss, *metrics]``
        (a float alone without metrics), or a dict with ``return_dict=True``, as Keras."""
        self._check_compiled("evaluate")
        return training.evaluate(self, x, y, batch_size, verbose, sample_weight, steps, callbacks, return_dict)

    def predict(self, x, batch_size: int | None = None, verbose=0, steps: int | None = None):
        """Outputs for every sample (of ``steps`` batches, if given), computed in batches without
        building a graph; a NumPy array (a list of them for several outputs). x as for fit, its
        batches' y (if any) ignored."""
        batch_size = check_batch_size(batch_size, "predict")
        if steps is not None:
            steps = positive_int(steps, "steps", "predict")
        batches, _ = data_batches(self, x, batch_size=batch_size, steps=steps, where="predict", need_y=False)
        return self._join([self._predict_batch(xb) for xb, _, _ in batches.epoch()])

    def _predict_batch(self, xb):
        with no_grad():
            out = self(on_device(self, xb), training=False)
        return [o.numpy() for o in out] if isinstance(out, (list, tuple)) else out.numpy()

    def _join(self, parts: list):
        if parts and isinstance(parts[0], list):
            return [np.concatenate([part[k] for part in parts]) for k in range(len(parts[0]))]
        if parts:
            return np.concatenate(parts)
        shape = self.output_shape if self.built else None
        return np.zeros((0,) + (tuple(shape[1:]) if isinstance(shape, tuple) else ()))

    # --- inspection and saving -------------------------------------------------------------------
    def summary(self, print_fn=None) -> None:
        """Print each layer with its output shape and parameter count, as Keras does."""
        if not self.built:
            raise ValueError("summary: the model is not built yet; give the first layer input_shape=, "
                             "start with layers.Input(shape), call model.build(input_shape), or call "
                             "the model on data first")
        print_summary(self, summary_rows(self), print_fn)

    def save(self, path: str, metadata: dict | None = None) -> None:
        """Write the model (config, weights, optional JSON-able metadata) to one ``.npz``; never pickle."""
        saving.save_model(self, path, metadata=metadata)

    def save_weights(self, path: str) -> None:
        saving.save_weights(self, path)

    def load_weights(self, path: str) -> None:
        saving.load_weights(self, path)


def _shapes_of(x):
    """(None, ...) of each input a subclassed model was first called with, in the structure of
    the call: one shape, a list of them, or a dict of them by key."""
    if isinstance(x, dict):
        return {key: (None,) + tuple(value.shape[1:]) for key, value in x.items()}
    if isinstance(x, list):
        return [(None,) + tuple(value.shape[1:]) for value in x]
    return (None,) + tuple(x.shape[1:])
