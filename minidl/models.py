"""Sequential: a stack of layers with Keras' compile / fit / evaluate / predict / summary.

Training one batch is the whole story of supervised learning in four lines (``_train_step``):

    y_pred = model(x, training=True)                 forward, building the graph
    loss = loss_fn(y, y_pred, sample_weight) + Σ penalties
    loss.backward()                                  gradients of every weight
    optimizer.apply(model.trainable_weights)         update, then clear the gradients

Around that step stand the loops over whole data sets (fit, evaluate, predict) with the
bookkeeping Keras users expect: metrics averaged over an epoch, validation, callbacks. The
batches they walk (shuffling, the validation split, class weights) come from
``minidl.batches``; the argument checks, the NaN guard of a step and the progress display from
``minidl.training``. Saving is ``minidl.saving``'s, reached by ``save`` / ``load_weights``.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from minidl import backend, losses, metrics as metrics_module
from minidl import optimizers, saving
from minidl import training
from minidl.batches import class_weight_table, data_batches, sample_weights, to_model_device
from minidl.function import no_grad
from minidl.layers.base import Layer, unique_name
from minidl.layers.serialization import current_size_budget, deserialize_layer, register_model, serialize_layer
from minidl.tensor import Tensor
from minidl.training import check_batch_size, non_finite_problem, unpack


@register_model  # so that minidl.saving.load_model can rebuild it by name
class Sequential(Layer):
    """A linear stack of layers, as ``keras.Sequential``.

    Args:
        layers: the layers in order; the first may be ``layers.Input(shape)`` or carry
            ``input_shape=``, so the model is built (and ``summary()`` works) at once.
        name: the model's name.
    """

    def __init__(self, layers: Iterable[Layer] | None = None, name: str | None = None):
        super().__init__(name=name or unique_name("sequential"))
        self.layers: list[Layer] = []
        self.built_input_shape: tuple | None = None
        self.output_shapes: list[tuple] = []
        self.optimizer = None
        self.loss = None
        self.metric_names: list[str] = []
        self.stop_training = False
        self.terminate_on_nan = True
        self.history = None
        for layer in layers or []:
            _check_layer(layer)
            self.layers.append(layer)
        # built once, after all layers are in: add() per layer made a trial call through the
        # whole stack each time, quadratic in the depth (see test_saving_hostile's 2,000 layers)
        if self.layers and self.layers[0].input_shape_arg is not None:
            self.build((None,) + tuple(self.layers[0].input_shape_arg))

    # --- structure ---------------------------------------------------------------------------
    def add(self, layer: Layer) -> None:
        """Append a layer; builds the model when the first layer declares its input shape, and
        builds just the new layer when the model is built already."""
        _check_layer(layer)
        if not self.layers and layer.input_shape_arg is not None:
            shape = (None,) + tuple(layer.input_shape_arg)
            self.layers.append(layer)
            self.build(shape)
            return
        self.layers.append(layer)
        if self.built_input_shape is None:
            return
        if len(self.output_shapes) == len(self.layers) - 1:  # the layers before are built for it
            previous = self.output_shapes[-1] if self.output_shapes else self.built_input_shape
            self.output_shapes.append(self._layer_output_shape(layer, previous))
        else:
            self.build(self.built_input_shape)

    def sublayers(self) -> list[Layer]:
        return self.layers

    def build(self, input_shape: tuple) -> None:
        """Create every layer's weights for inputs of ``input_shape`` (batch axis first, may be None)."""
        input_shape = tuple(input_shape)
        self.output_shapes = []
        shape = input_shape
        for layer in self.layers:
            shape = self._layer_output_shape(layer, shape)
            self.output_shapes.append(shape)
        self.built_input_shape = input_shape
        self.built = True

    @staticmethod
    def _layer_output_shape(layer: Layer, input_shape: tuple) -> tuple:
        """Build ``layer`` for ``input_shape`` by a trial call; within ``minidl.saving.load_model``
        the file's size budget is asked first, so that a file cannot make it allocate without bound."""
        budget = current_size_budget()
        if budget is not None:
            budget.before(layer, input_shape)
        shape = layer.compute_output_shape(input_shape)
        if budget is not None:
            budget.after(layer, shape)
        return shape

    def __call__(self, inputs, training: bool | None = None, mask=None, **kwargs):
        x = self._prepare(inputs)
        if mask is not None:
            x.mask = mask
        if self.built_input_shape is None:
            self.built_input_shape = (None,) + tuple(x.shape[1:])
            self.built = True
        for layer in self.layers:
            x = layer(x, training=training)
        return x

    call = __call__

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        if not self.built or tuple(input_shape) != self.built_input_shape \
                or len(self.output_shapes) != len(self.layers):  # built by a call, which finds no shapes
            self.build(input_shape)
        return self.output_shapes[-1] if self.output_shapes else tuple(input_shape)

    def to(self, device: str) -> "Sequential":
        """Move every weight to "cpu" or "gpu"; data given to fit/predict follows the weights."""
        for layer in self.layers:
            layer.to(device)
        if self.optimizer is not None and hasattr(self.optimizer, "reset"):
            self.optimizer.reset()
        return self

    def get_config(self) -> dict:
        return {"name": self.name, "layers": [serialize_layer(layer) for layer in self.layers]}

    @classmethod
    def from_config(cls, config: dict) -> "Sequential":
        return cls([deserialize_layer(entry) for entry in config["layers"]], name=config.get("name"))

    # --- training set-up -----------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics: list | None = None,
                terminate_on_nan: bool = True) -> None:
        """Choose the optimizer, the loss and the metrics reported during fit/evaluate.

        Args:
            optimizer: a name ("adam", "sgd", "rmsprop", "adamw") or an Optimizer.
            loss: a Keras loss name, a ``minidl.losses.Loss`` or a per-sample loss function.
            metrics: names such as "accuracy" (resolved by the loss, as Keras does).
            terminate_on_nan: stop fit with an error when the loss is not finite (Keras'
                TerminateOnNaN callback, on by default here).
        """
        if loss is None:
            raise ValueError("compile: a loss is needed, e.g. loss='sparse_categorical_crossentropy'")
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        self.metric_names = list(metrics or [])
        self.metric_fns = []  # (display name, function on NumPy arrays)
        for name in self.metric_names:
            fn, display = metrics_module.resolve(name, self.loss.name)
            self.metric_fns.append((display, fn))
        self.terminate_on_nan = terminate_on_nan

    def _check_compiled(self, where: str) -> None:
        if self.loss is None:
            raise RuntimeError(f"{where}: call model.compile(optimizer, loss) first")

    # --- one batch -----------------------------------------------------------------------------
    def _total_loss(self, y, y_pred: Tensor, sample_weight) -> Tensor:
        loss = self.loss(y, y_pred, sample_weight)
        penalty = self.regularization_loss()
        return loss if penalty is None else loss + penalty

    def train_on_batch(self, x, y, sample_weight=None, class_weight: dict | None = None,
                       return_dict: bool = False):
        """One gradient step on one batch; returns the loss (and metrics) on that batch, as Keras."""
        self._check_compiled("train_on_batch")
        class_weight = class_weight_table(class_weight, "train_on_batch")
        x, y = to_model_device(self, x), to_model_device(self, y)
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
        x, y = to_model_device(self, x), to_model_device(self, y)
        with no_grad():
            y_pred = self(x, training=False)
            loss = float(self._total_loss(y, y_pred, sample_weight).data)
        logs = self._logs(loss, y, y_pred)
        return logs if return_dict else unpack(logs)

    def _logs(self, loss: float, y, y_pred: Tensor) -> dict:
        logs = {"loss": loss}
        if self.metric_fns:
            y_true, scores = backend.to_numpy(y), y_pred.numpy()
            for display, fn in self.metric_fns:
                logs[display] = float(fn(y_true, scores))
        return logs

    # --- whole data sets -----------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size: int | None = None, epochs: int = 1, verbose="auto",
            callbacks: list | None = None, validation_split: float = 0.0, validation_data=None,
            shuffle: bool = True, class_weight: dict | None = None, sample_weight=None,
            initial_epoch: int = 0, steps_per_epoch: int | None = None, validation_steps: int | None = None,
            validation_batch_size: int | None = None, validation_freq=1):
        """Train for ``epochs`` passes over the data, as ``keras.Model.fit``.

        Args:
            x: inputs (batch, ...), or a ``minidl.data.Sequence``, a generator, or any iterable
                of (x, y[, weight]) batches such as a torch DataLoader.
            y: targets (integer labels or one-hot rows, as the loss wants).
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

    def predict(self, x, batch_size: int | None = None, verbose=0, steps: int | None = None) -> np.ndarray:
        """Outputs for every sample (of ``steps`` batches, if given), computed in batches without
        building a graph; a NumPy array. x as for fit, its batches' y (if any) ignored."""
        batch_size = check_batch_size(batch_size, "predict")
        batches, _ = data_batches(self, x, batch_size=batch_size, steps=steps, where="predict", need_y=False)
        parts = [self._predict_batch(xb) for xb, _, _ in batches.epoch()]
        return np.concatenate(parts) if parts else np.zeros((0,) + (self.output_shapes[-1][1:]
                                                                     if self.built_input_shape else ()))

    def _predict_batch(self, xb) -> np.ndarray:
        with no_grad():
            return self(to_model_device(self, xb), training=False).numpy()

    # --- inspection and saving -------------------------------------------------------------------
    def summary(self, print_fn=None) -> None:
        """Print each layer with its output shape and parameter count, as Keras does."""
        print_fn = print_fn or print
        if not self.built or self.built_input_shape is None:
            raise ValueError("summary: the model is not built yet; give the first layer input_shape=, "
                             "start with layers.Input(shape), call model.build(input_shape), or call "
                             "the model on data first")
        if len(self.output_shapes) != len(self.layers):
            self.build(self.built_input_shape)
        rows = [(f"{layer.name} ({type(layer).__name__})", str(_shape_text(shape)), f"{layer.count_params():,}")
                for layer, shape in zip(self.layers, self.output_shapes)]
        widths = [max(len("Layer (type)"), *(len(r[0]) for r in rows)) + 2,
                  max(len("Output Shape"), *(len(r[1]) for r in rows)) + 2,
                  max(len("Param #"), *(len(r[2]) for r in rows))]
        line = "─" * sum(widths)
        print_fn(f'Model: "{self.name}"')
        print_fn(line)
        print_fn("Layer (type)".ljust(widths[0]) + "Output Shape".ljust(widths[1]) + "Param #".rjust(widths[2]))
        print_fn(line)
        for name, shape, params in rows:
            print_fn(name.ljust(widths[0]) + shape.ljust(widths[1]) + params.rjust(widths[2]))
        print_fn(line)
        trainable = sum(w.size for w in self.trainable_weights)
        total = self.count_params()
        print_fn(f" Total params: {total:,}")
        print_fn(f" Trainable params: {trainable:,}")
        print_fn(f" Non-trainable params: {total - trainable:,}")

    def save(self, path: str, metadata: dict | None = None) -> None:
        """Write the model (config, weights, optional JSON-able metadata) to one ``.npz``; never pickle."""
        saving.save_model(self, path, metadata=metadata)

    def save_weights(self, path: str) -> None:
        saving.save_weights(self, path)

    def load_weights(self, path: str) -> None:
        saving.load_weights(self, path)


def _check_layer(layer) -> None:
    if not isinstance(layer, Layer):
        raise TypeError(f"Sequential.add: expected a Layer, got {type(layer).__name__}")


def _shape_text(shape: tuple) -> str:
    return "(" + ", ".join("None" if n is None else str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"
