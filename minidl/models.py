"""Sequential: a stack of layers with Keras' compile / fit / evaluate / predict / summary.

Training one batch is the whole story of supervised learning in four lines (``_train_step``):

    y_pred = model(x, training=True)                 forward, building the graph
    loss = loss_fn(y, y_pred, sample_weight) + Σ penalties
    loss.backward()                                  gradients of every weight
    optimizer.apply(model.trainable_weights)         update, then clear the gradients

Everything else here is bookkeeping Keras users expect: batching and shuffling, validation,
metrics averaged over an epoch, callbacks, a progress bar.
"""
from __future__ import annotations

import math
import sys
from typing import Any, Iterable

import numpy as np
from tqdm.auto import tqdm

from minidl import backend, callbacks as callbacks_module, losses, metrics as metrics_module
from minidl import optimizers, saving
from minidl.data import Sequence, batch_indices
from minidl.function import no_grad
from minidl.layers.base import Layer, unique_name
from minidl.layers.serialization import deserialize_layer, register_model, serialize_layer
from minidl.tensor import Tensor


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
        self.optimizer = None
        self.loss = None
        self.metric_names: list[str] = []
        self.stop_training = False
        self.terminate_on_nan = True
        self.history = None
        for layer in layers or []:
            self.add(layer)

    # --- structure ---------------------------------------------------------------------------
    def add(self, layer: Layer) -> None:
        """Append a layer; builds the model when the first layer declares its input shape."""
        if not isinstance(layer, Layer):
            raise TypeError(f"Sequential.add: expected a Layer, got {type(layer).__name__}")
        if not self.layers and layer.input_shape_arg is not None:
            shape = (None,) + tuple(layer.input_shape_arg)
            self.layers.append(layer)
            self.build(shape)
            return
        self.layers.append(layer)
        if self.built_input_shape is not None:
            self.build(self.built_input_shape)

    def sublayers(self) -> list[Layer]:
        return self.layers

    def build(self, input_shape: tuple) -> None:
        """Create every layer's weights for inputs of ``input_shape`` (batch axis first, may be None)."""
        input_shape = tuple(input_shape)
        self.output_shapes = []
        shape = input_shape
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
            self.output_shapes.append(shape)
        self.built_input_shape = input_shape
        self.built = True

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
        if not self.built or tuple(input_shape) != self.built_input_shape:
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
    def _to_device(self, array):
        """A batch as an array on the same device as the weights."""
        if array is None:
            return None
        array = getattr(array, "data", array)
        weights = self.weights
        if weights and backend.is_cupy_array(weights[0].data):
            return backend.to_device(array, "gpu")
        if not weights and backend.current() == "cupy":
            return backend.to_device(array, "gpu")
        return backend.to_numpy(array) if backend.is_cupy_array(array) else np.asarray(array)

    def _total_loss(self, y, y_pred: Tensor, sample_weight) -> Tensor:
        loss = self.loss(y, y_pred, sample_weight)
        penalty = self.regularization_loss()
        return loss if penalty is None else loss + penalty

    def train_on_batch(self, x, y, sample_weight=None, class_weight: dict | None = None,
                       return_dict: bool = False):
        """One gradient step on one batch; returns the loss (and metrics) on that batch, as Keras."""
        self._check_compiled("train_on_batch")
        x, y = self._to_device(x), self._to_device(y)
        sample_weight = self._sample_weight(y, sample_weight, class_weight)
        y_pred, loss = self._train_step(x, y, sample_weight)
        logs = self._logs(loss, y, y_pred)
        return logs if return_dict else _unpack(logs)

    def _train_step(self, x, y, sample_weight):
        y_pred = self(x, training=True)
        loss = self._total_loss(y, y_pred, sample_weight)
        loss.backward()
        self.optimizer.apply(self.trainable_weights)
        return y_pred, float(loss.data)

    def test_on_batch(self, x, y, sample_weight=None, return_dict: bool = False):
        """The loss (and metrics) on one batch, without training."""
        self._check_compiled("test_on_batch")
        x, y = self._to_device(x), self._to_device(y)
        with no_grad():
            y_pred = self(x, training=False)
            loss = float(self._total_loss(y, y_pred, self._sample_weight(y, sample_weight, None)).data)
        logs = self._logs(loss, y, y_pred)
        return logs if return_dict else _unpack(logs)

    def _logs(self, loss: float, y, y_pred: Tensor) -> dict:
        logs = {"loss": loss}
        if self.metric_fns:
            y_true, scores = backend.to_numpy(y), y_pred.numpy()
            for display, fn in self.metric_fns:
                logs[display] = float(fn(y_true, scores))
        return logs

    def _sample_weight(self, y, sample_weight, class_weight):
        if class_weight is None:
            return sample_weight
        labels = backend.to_numpy(y)
        labels = labels.argmax(-1) if labels.ndim > 1 and labels.shape[-1] > 1 else labels.reshape(len(labels))
        table = np.ones(int(max(max(class_weight), labels.max())) + 1)
        for label, weight in class_weight.items():
            table[int(label)] = weight
        weights = table[labels.astype(int)]
        if sample_weight is not None:
            weights = weights * backend.to_numpy(sample_weight)
        return self._to_device(weights)

    # --- whole data sets -----------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size: int | None = None, epochs: int = 1, verbose="auto",
            callbacks: list | None = None, validation_split: float = 0.0, validation_data=None,
            shuffle: bool = True, class_weight: dict | None = None, sample_weight=None,
            initial_epoch: int = 0, steps_per_epoch: int | None = None):
        """Train for ``epochs`` passes over the data, as ``keras.Model.fit``.

        Args:
            x: inputs (batch, ...), or a ``minidl.data.Sequence`` / generator of (x, y[, weight]).
            y: targets (integer labels or one-hot rows, as the loss wants).
            batch_size: samples per step (32 when omitted, as Keras).
            validation_split: the LAST fraction of x, y held out before shuffling (as Keras).
            validation_data: (x_val, y_val) or (x_val, y_val, weights), or a Sequence.
            class_weight: {label: weight} multiplying each sample's loss.
            verbose: 0 silent, 1 a progress bar per epoch, 2 one line per epoch; "auto" is 1.
        Returns:
            A History callback; ``history.history`` maps "loss", metrics and "val_*" to lists.
        Raises:
            FloatingPointError: the loss became NaN or inf (naming epoch and batch), unless
                compile(terminate_on_nan=False).
        """
        self._check_compiled("fit")
        verbose = 1 if verbose == "auto" else int(verbose)
        batch_size = batch_size or 32
        batches_of, steps = self._batch_source(x, y, sample_weight, batch_size, shuffle, validation_split,
                                               class_weight, steps_per_epoch, "fit")
        if validation_split and validation_data is None and not _is_batch_source(x):
            validation_data = self._split_off  # set by _batch_source
        callback_list = callbacks_module.CallbackList(callbacks, add_history=True, model=self, epochs=epochs,
                                                      steps=steps, verbose=verbose)
        history = callback_list.history
        self.stop_training = False
        callback_list.on_train_begin({})
        for epoch in range(initial_epoch, epochs):
            callback_list.on_epoch_begin(epoch, {})
            totals: dict[str, float] = {}
            seen = 0
            bar = _progress(steps, epoch, epochs, verbose)
            for step, (xb, yb, wb) in enumerate(batches_of()):
                callback_list.on_train_batch_begin(step, {})
                y_pred, loss = self._train_step(xb, yb, wb)
                if self.terminate_on_nan and not math.isfinite(loss):
                    bar.close()
                    raise FloatingPointError(f"fit: the loss became {loss} at epoch {epoch + 1}, batch "
                                             f"{step + 1}; lower the learning rate, check the inputs for "
                                             "NaN, or compile(terminate_on_nan=False) to carry on")
                logs = self._logs(loss, yb, y_pred)
                n = len(xb)
                seen += n
                for key, value in logs.items():
                    totals[key] = totals.get(key, 0.0) + value * n
                running = {key: value / seen for key, value in totals.items()}
                callback_list.on_train_batch_end(step, running)
                bar.set_postfix({k: f"{v:.4f}" for k, v in running.items()}, refresh=False)
                bar.update(1)
                if self.stop_training:
                    break
            epoch_logs = {key: value / max(seen, 1) for key, value in totals.items()}
            if validation_data is not None:
                val = self.evaluate(*_as_tuple(validation_data), batch_size=batch_size, verbose=0,
                                    return_dict=True)
                epoch_logs.update({f"val_{key}": value for key, value in val.items()})
            bar.set_postfix({k: f"{v:.4f}" for k, v in epoch_logs.items()}, refresh=True)
            bar.close()
            if verbose == 2:
                line = " - ".join(f"{k}: {v:.4f}" for k, v in epoch_logs.items())
                sys.stderr.write(f"Epoch {epoch + 1}/{epochs} - {line}\n")
            callback_list.on_epoch_end(epoch, epoch_logs)
            if hasattr(x, "on_epoch_end"):
                x.on_epoch_end()
            if self.stop_training:
                break
        callback_list.on_train_end({})
        self.history = history
        return history

    def evaluate(self, x=None, y=None, batch_size: int | None = None, verbose="auto",
                 sample_weight=None, return_dict: bool = False):
        """Loss and metrics over a whole data set: ``[loss, *metrics]`` (a float alone without
        metrics), or a dict with ``return_dict=True``, as Keras."""
        self._check_compiled("evaluate")
        verbose = 1 if verbose == "auto" else int(verbose)
        batches_of, steps = self._batch_source(x, y, sample_weight, batch_size or 32, False, 0.0, None, None,
                                               "evaluate")
        totals: dict[str, float] = {}
        seen = 0
        bar = _progress(steps, None, None, verbose, "evaluate")
        with no_grad():
            for xb, yb, wb in batches_of():
                y_pred = self(xb, training=False)
                logs = self._logs(float(self._total_loss(yb, y_pred, wb).data), yb, y_pred)
                seen += len(xb)
                for key, value in logs.items():
                    totals[key] = totals.get(key, 0.0) + value * len(xb)
                bar.update(1)
        bar.close()
        logs = {key: value / max(seen, 1) for key, value in totals.items()}
        return logs if return_dict else _unpack(logs)

    def predict(self, x, batch_size: int | None = None, verbose=0) -> np.ndarray:
        """Outputs for every sample, computed in batches without building a graph; a NumPy array."""
        if isinstance(x, Sequence) or _is_generator(x):
            parts = [self._predict_batch(_as_tuple(item)[0]) for item in (x if _is_generator(x) else
                                                                            (x[i] for i in range(len(x))))]
            return np.concatenate(parts) if parts else np.zeros((0,))
        x = np.asarray(backend.to_numpy(getattr(x, "data", x)))
        batch_size = batch_size or 32
        parts = [self._predict_batch(x[start:start + batch_size]) for start in range(0, len(x), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0,) + (self.output_shapes[-1][1:]
                                                                     if self.built_input_shape else ()))

    def _predict_batch(self, xb) -> np.ndarray:
        with no_grad():
            return self(self._to_device(xb), training=False).numpy()

    def _batch_source(self, x, y, sample_weight, batch_size, shuffle, validation_split, class_weight,
                      steps_per_epoch, where):
        """A function giving one epoch's batches as (x, y, weight) on the model's device, and
        the number of steps (None when unknown)."""
        self._split_off = None
        if _is_batch_source(x):
            if y is not None:
                raise ValueError(f"{where}: y must be None when x is a Sequence or generator of batches")

            def from_source():
                items = (x[i] for i in range(len(x))) if isinstance(x, Sequence) else x
                for count, item in enumerate(items):
                    if steps_per_epoch is not None and count >= steps_per_epoch:
                        break
                    xb, yb, wb = (_as_tuple(item) + (None,))[:3]
                    yield (self._to_device(xb), self._to_device(yb),
                           self._sample_weight(self._to_device(yb), self._to_device(wb), class_weight))
            steps = len(x) if isinstance(x, Sequence) else steps_per_epoch
            return from_source, steps
        if x is None or y is None:
            raise ValueError(f"{where}: both x and y are needed (or x as a Sequence of batches)")
        x = backend.to_numpy(getattr(x, "data", x)) if backend.is_cupy_array(getattr(x, "data", x)) else np.asarray(getattr(x, "data", x))
        y = backend.to_numpy(getattr(y, "data", y)) if backend.is_cupy_array(getattr(y, "data", y)) else np.asarray(getattr(y, "data", y))
        if len(x) != len(y):
            raise ValueError(f"{where}: x has {len(x)} samples but y has {len(y)}; they must match")
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight)
            if len(sample_weight) != len(x):
                raise ValueError(f"{where}: sample_weight has {len(sample_weight)} entries for {len(x)} samples")
        if validation_split:
            if not 0 < validation_split < 1:
                raise ValueError(f"{where}: validation_split must be in (0, 1), got {validation_split}")
            cut = int(len(x) * (1 - validation_split))
            self._split_off = (x[cut:], y[cut:]) + ((sample_weight[cut:],) if sample_weight is not None else ())
            x, y = x[:cut], y[:cut]
            sample_weight = sample_weight[:cut] if sample_weight is not None else None
        if len(x) == 0:
            raise ValueError(f"{where}: no samples to use")

        def from_arrays():
            for index in batch_indices(len(x), batch_size, shuffle):
                wb = sample_weight[index] if sample_weight is not None else None
                yb = self._to_device(y[index])
                yield self._to_device(x[index]), yb, self._sample_weight(yb, self._to_device(wb), class_weight)
        return from_arrays, math.ceil(len(x) / batch_size)

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


def _shape_text(shape: tuple) -> str:
    return "(" + ", ".join("None" if n is None else str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def _unpack(logs: dict):
    values = list(logs.values())
    return values[0] if len(values) == 1 else values


def _as_tuple(item) -> tuple:
    return tuple(item) if isinstance(item, (tuple, list)) else (item,)


def _is_generator(x: Any) -> bool:
    return hasattr(x, "__next__")


def _is_batch_source(x: Any) -> bool:
    return isinstance(x, Sequence) or _is_generator(x)


class _NoBar:
    def update(self, n=1): pass
    def set_postfix(self, *args, **kwargs): pass
    def close(self): pass


def _progress(steps, epoch, epochs, verbose, label=None):
    if verbose != 1:
        return _NoBar()
    desc = label or f"Epoch {epoch + 1}/{epochs}"
    return tqdm(total=steps, desc=desc, unit="batch", leave=True, dynamic_ncols=True, file=sys.stderr)
