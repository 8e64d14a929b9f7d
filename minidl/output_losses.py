"""What ``compile`` makes of its loss and metrics: one loss and a metric set per model output.

For a model of one output this is the loss and metrics as given. With several outputs, as Keras
3 does it:

    loss = Σ_k w_k · loss_k(y_k, ŷ_k)            w_k from loss_weights (1 when not given)

``loss`` may be one loss (applied to every output), a list (one per output, in output order) or
a dict keyed by output name (every output, as Keras 3 requires); ``loss_weights`` a list or dict
alike; ``metrics`` a list of lists or a dict of output name to a metric or a list of them. The
logs are Keras' names, in Keras' order: "loss", then "<output>_loss" for each output with a
loss (unweighted), then "<output>_<metric>" (e.g. "dense_1_accuracy"). An output's name is the
name of the layer that makes it.
"""
from __future__ import annotations

from minidl import backend, losses, metrics as metrics_module
from minidl.tensor import Tensor


def _per_output(value, names: list[str], what: str, fill=None) -> list:
    """``value`` as one entry per output: a dict by name, a list in order, or one value for all."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(f"compile: {what} names {', '.join(map(repr, unknown))}, which are not outputs of the "
                             f"model; its outputs are {', '.join(map(repr, names))}")
        return [value.get(name, fill) for name in names]
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise ValueError(f"compile: {what} is a list of {len(value)}, but the model has {len(names)} outputs "
                             f"({', '.join(map(repr, names))})")
        return list(value)
    return [value] * len(names)


class CompiledOutputs:
    """The losses, weights and metrics of each output, and the logs they give.

    Args:
        loss, loss_weights, metrics: as given to ``compile`` (see the module docstring).
        output_names: the model's output names, in order.
    Raises:
        ValueError: no loss for any output, a list of the wrong length, a dict naming no output.
    """

    def __init__(self, loss, loss_weights, metrics, output_names: list[str]):
        self.output_names = list(output_names)
        self.several = len(self.output_names) > 1
        if isinstance(loss, dict) and set(loss) < set(self.output_names):  # Keras 3 refuses it too
            raise ValueError(f"compile: a loss dict needs every output, {self.output_names}; got "
                             f"{sorted(loss)} (give loss_weights 0 to leave one out of training)")
        given = _per_output(loss, self.output_names, "loss")
        self.losses = [None if entry is None else losses.get(entry) for entry in given]
        if all(entry is None for entry in self.losses):
            raise ValueError("compile: a loss is needed, e.g. loss='sparse_categorical_crossentropy'")
        weights = _per_output(1.0 if loss_weights is None else loss_weights, self.output_names,
                              "loss_weights", fill=1.0)
        try:
            self.loss_weights = [float(w) for w in weights]
        except (TypeError, ValueError):
            raise ValueError(f"compile: loss_weights must be numbers, got {loss_weights!r:.100}") from None
        if self.several and isinstance(metrics, (list, tuple)) and metrics and \
                not all(isinstance(m, (list, tuple)) or m is None for m in metrics):
            raise ValueError(f"compile: with {len(self.output_names)} outputs, metrics must be a dict by output name "
                             f"or a list of lists, one per output (as Keras), got {metrics!r:.100}")
        per_output = _per_output(metrics, self.output_names, "metrics") if self.several else [metrics]
        self.metric_fns: list[list[tuple[str, object]]] = []   # per output: (log name, function on arrays)
        self.metric_entries: list[list] = []   # per output: the metrics as given (names, functions), for saving
        for name, entries, loss_fn in zip(self.output_names, per_output, self.losses):
            entries = [] if entries is None else ([entries] if isinstance(entries, str) else list(entries))
            self.metric_entries.append(entries)
            fns = []
            for entry in entries:
                fn, display = metrics_module.resolve(entry, loss_fn.name if loss_fn is not None else None)
                fns.append((f"{name}_{display}" if self.several else display, fn))
            self.metric_fns.append(fns)
        self.last_output_losses: list[float | None] = []

    @property
    def metric_names(self) -> list[str]:
        """The metric log names, in the order of the logs."""
        return [display for fns in self.metric_fns for display, _ in fns]

    def total_loss(self, ys: list, y_preds: list, sample_weight) -> Tensor:
        """Σ_k w_k · loss_k; each output's unweighted value is kept for the logs of this batch.
        ``sample_weight``: one array for every output, or a list of one per output (None in it:
        that output unweighted), as ``minidl.batches.weights_in_order`` lines them up."""
        total, self.last_output_losses = None, []
        per_output = sample_weight if isinstance(sample_weight, list) else [sample_weight] * len(self.losses)
        for y, y_pred, loss_fn, weight, sample_weights in zip(ys, y_preds, self.losses, self.loss_weights,
                                                              per_output):
            if loss_fn is None:
                self.last_output_losses.append(None)
                continue
            value = loss_fn(y, y_pred, sample_weights)
            self.last_output_losses.append(value.data)
            term = value if weight == 1.0 else value * weight
            total = term if total is None else total + term
        return total

    def logs(self, loss: float, ys: list, y_preds: list) -> dict:
        """``{"loss": ..., "<output>_loss": ..., metric names: ...}`` for one batch."""
        logs = {"loss": loss}
        if self.several:
            for name, value in zip(self.output_names, self.last_output_losses):
                if value is not None:
                    logs[f"{name}_loss"] = float(value)
        for y, y_pred, fns in zip(ys, y_preds, self.metric_fns):
            if fns:
                y_true, scores = backend.to_numpy(getattr(y, "data", y)), y_pred.numpy()
                for display, fn in fns:
                    logs[display] = float(fn(y_true, scores))
        return logs


def output_names_of(layers_making_outputs: list) -> list[str]:
    """Keras' output names: the layer making each output; a layer making several gets _1, _2, ..."""
    names = [layer.name for layer in layers_making_outputs]
    counts: dict[str, int] = {}
    out = []
    for name in names:
        n = counts.get(name, 0)
        counts[name] = n + 1
        out.append(name if names.count(name) == 1 or n == 0 else f"{name}_{n}")
    return out

