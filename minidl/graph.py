"""Pictures of the computation graph: the Tensors and Functions behind a tensor, as Graphviz DOT.

``plot_graph(y)`` walks back from ``y`` through ``Tensor.creator`` and ``Function.inputs`` — the
same links ``backward()`` follows — and draws one box per tensor (shape, dtype, name) and one
ellipse per Function (its class name, the op), with edges in the direction data flows:

    a ──┐
        ├─► (Add) ──► s ──┐
    b ──┘                 ├─► (Mul) ──► y
                     c ───┘

A fused op is one Function, so it is one node: an LSTM layer over 50 steps is one
``LSTMFunction`` ellipse, not the 500 primitive ops its equations would take. Only tensors met on
the way back from ``y`` are drawn; an output of a multi-output Function that nothing downstream
used (an LSTM's sequence when only its last h is kept) is left out, so the picture does not
depend on what the garbage collector has freed yet.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from minidl import backend
from minidl.tensor import Tensor

RENDERED_FORMATS = (".svg", ".png")   # written by Graphviz's ``dot``; anything else gets the DOT text


def plot_graph(tensor: Tensor, path: str | Path | None = None, *, show_gradients: bool = False) -> str:
    """The computation graph behind ``tensor`` as Graphviz DOT text, optionally written to a file.

    Args:
        tensor: the tensor to draw the graph of, any shape (often a scalar loss).
        path: where to write it. ``.svg`` or ``.png``: rendered by the ``dot`` program
            (Graphviz); any other suffix (``.dot``, ``.gv``): the DOT text itself. None: not written.
        show_gradients: also label each tensor holding a ``.grad`` with the gradient's shape and
            L2 norm (after ``backward(retain_graph=True)``: a plain backward frees the graph, and
            only leaves keep ``.grad``), and draw dashed the edges no gradient flows along.
    Returns:
        The DOT text: ``digraph`` with nodes ``t0, t1, ...`` (tensors, boxes; ``t0`` is
        ``tensor``) and ``f0, f1, ...`` (Functions, ellipses), and one edge per input of each
        Function (tensor -> function) and per output met on the walk (function -> tensor).
    Raises:
        RuntimeError: the graph was freed by ``backward()`` (pass ``retain_graph=True``), or a
            ``.svg``/``.png`` was asked for and ``dot`` is missing or fails.
    """
    dot_text = graph_to_dot(tensor, show_gradients=show_gradients)
    if path is not None:
        path = Path(path)
        if path.suffix.lower() in RENDERED_FORMATS:
            render_dot(dot_text, path)
        else:
            path.write_text(dot_text, encoding="utf-8")
    return dot_text


def graph_to_dot(tensor: Tensor, *, show_gradients: bool = False) -> str:
    """The DOT text of ``plot_graph``, without writing anything; see there for Args and Raises."""
    tensor_ids: dict[int, str] = {}      # id(tensor) -> node name; the walk holds the tensors alive
    function_ids: dict[int, str] = {}
    lines = ["digraph minidl {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];']
    edges: list[str] = []

    def tensor_node(t: Tensor) -> tuple[str, bool]:
        """The node name of t, and whether it is new (so its creator still has to be visited)."""
        if id(t) in tensor_ids:
            return tensor_ids[id(t)], False
        name = tensor_ids[id(t)] = f"t{len(tensor_ids)}"
        style = ', style=filled, fillcolor="#dde8f5"' if t.creator is None and t.requires_grad else ""
        lines.append(f'  {name} [shape=box, label="{escape(tensor_label(t, show_gradients))}"{style}];')
        return name, True

    root, _ = tensor_node(tensor)
    stack = [tensor]   # tensors whose creator is still to be drawn: a loop, not recursion
    while stack:
        t = stack.pop()
        function = t.creator
        if function is None:
            continue
        if getattr(function, "released", False):
            raise RuntimeError("plot_graph: the graph behind this tensor was freed by backward(); "
                               "call backward(retain_graph=True) to draw it afterwards, or draw "
                               "it before backward")
        name = function_ids.get(id(function))
        if name is None:
            name = function_ids[id(function)] = f"f{len(function_ids)}"
            lines.append(f'  {name} [shape=ellipse, label="{escape(type(function).__name__)}"];')
            needs = function.needs_input_grad or (True,) * len(function.inputs)
            for x, needed in zip(function.inputs, needs):
                x_name, new = tensor_node(x)
                dashed = " [style=dashed]" if show_gradients and not needed else ""
                edges.append(f"  {x_name} -> {name}{dashed};")
                if new:
                    stack.append(x)
        edges.append(f"  {name} -> {tensor_ids[id(t)]};")
    return "\n".join(lines + edges + ["}"]) + "\n"


def tensor_label(t: Tensor, show_gradients: bool = False) -> str:
    """A tensor's label: its name if it has one, then shape and dtype; the gradient if asked."""
    text = f"{t.shape} {t.dtype}"
    if t.name:
        text = f"{t.name}\n{text}"
    if show_gradients and t.grad is not None:
        norm = float(np.linalg.norm(backend.to_numpy(t.grad).astype(np.float64)))
        text += f"\ngrad {tuple(t.grad.shape)}, norm {norm:.4g}"
    return text


def escape(label: str) -> str:
    """A label as the inside of a DOT double-quoted string: backslashes and quotes escaped, and
    newlines as DOT's centred line break ``\\n``."""
    return label.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "\\n")


def render_dot(dot_text: str, path: Path) -> None:
    """Run Graphviz's ``dot`` to write ``dot_text`` as ``path``, an .svg or .png file.

    Raises:
        RuntimeError: ``dot`` is not on PATH, or it failed (its message is included).
    """
    program = shutil.which("dot")
    if program is None:
        raise RuntimeError(f"plot_graph: writing {path.name} needs the Graphviz 'dot' program, "
                           f"which is not on PATH; install graphviz (apt install graphviz, brew "
                           f"install graphviz, conda install graphviz) or give a path ending in .dot")
    result = subprocess.run([program, f"-T{path.suffix.lower()[1:]}", "-o", str(path)],
                            input=dot_text.encode("utf-8"), capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"plot_graph: dot failed writing {path} (exit {result.returncode}): "
                           f"{result.stderr.decode('utf-8', 'replace').strip()}")
