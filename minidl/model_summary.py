"""``model.summary()``: each layer with its output shape and parameter count, as Keras prints it.

A functional model adds Keras' "Connected to" column: the inputs of each call of the layer, as
``dense[0][0]`` (layer, call number, output number).
"""
from __future__ import annotations

from typing import Callable


def shape_text(shape) -> str:
    """``(None, 16)``; a list of shapes (several outputs) as a list of these."""
    if isinstance(shape, list):
        return "[" + ", ".join(shape_text(s) for s in shape) + "]"
    if shape is None:
        return "?"
    return "(" + ", ".join("None" if n is None else str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def summary_rows(model) -> list[tuple[str, str, str, str]]:
    """(layer (type), output shape, params, connected to) for each call of a layer in ``model``;
    a shared layer's weights are counted at its first call."""
    if model.graph is None:
        return [(f"{layer.name} ({type(layer).__name__})", "?", f"{layer.count_params():,}", "")
                for layer in model.layers]
    chain = not getattr(model, "shows_connections", True)  # Sequential: Keras lists no inputs, no links
    where, calls = {}, {}
    rows = []
    for node in model.graph.nodes:
        number = calls.get(id(node.layer), 0)
        calls[id(node.layer)] = number + 1
        for i, x in enumerate(node.outputs):
            where[id(x)] = f"{node.layer.name}[{number}][{i}]"
        if chain and not node.inputs:
            continue
        shapes = [x.shape for x in node.outputs]
        rows.append((f"{node.layer.name} ({type(node.layer).__name__})",
                     shape_text(shapes if node.returns_list else shapes[0]),
                     f"{node.layer.count_params():,}" if number == 0 else "0",
                     "" if chain else ", ".join(where[id(x)] for x in node.inputs) or "-"))
    return rows


def print_summary(model, rows: list[tuple[str, str, str, str]], print_fn: Callable | None = None) -> None:
    """Print ``rows`` of (layer (type), output shape, params, connected to) and the totals.

    The fourth column is shown only when some row fills it (a functional model).
    """
    print_fn = print_fn or print
    columns = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
    shown = 4 if any(row[3] for row in rows) else 3
    widths = [max(len(columns[i]), *(len(row[i]) for row in rows)) + 2 if rows else len(columns[i]) + 2
              for i in range(shown)]
    line = "─" * sum(widths)

    def cells(values):
        text = values[0].ljust(widths[0]) + values[1].ljust(widths[1]) + values[2].rjust(widths[2] - 2)
        return text + ("  " + values[3] if shown == 4 else "")

    print_fn(f'Model: "{model.name}"')
    print_fn(line)
    print_fn(cells(columns))
    print_fn(line)
    for row in rows:
        print_fn(cells(row))
    print_fn(line)
    trainable = sum(w.size for w in model.trainable_weights)
    total = model.count_params()
    print_fn(f" Total params: {total:,}")
    print_fn(f" Trainable params: {trainable:,}")
    print_fn(f" Non-trainable params: {total - trainable:,}")
