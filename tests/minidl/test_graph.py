"""plot_graph: the DOT text is parsed back into node and edge counts for graphs we can count by hand."""
import os
import re
import stat

import numpy as np
import pytest

import minidl as dl
import minidl.functional as F
from minidl import graph, layers


def parse(dot: str) -> tuple[list[str], list[str], int]:
    """(tensor node labels, function node labels, number of edges) of plot_graph's DOT text."""
    nodes = re.findall(r'^\s+([tf])\d+ \[shape=\w+, label="((?:[^"\\]|\\.)*)"', dot, flags=re.M)
    tensors = [label for kind, label in nodes if kind == "t"]
    functions = [label for kind, label in nodes if kind == "f"]
    return tensors, functions, dot.count("->")


def leaf(*shape, name=None):
    return dl.Tensor(np.ones(shape), requires_grad=True, name=name)


def test_sum_times_tensor_is_two_ops_five_tensors_six_edges():
    a, b, c = leaf(3), leaf(3), leaf(3)
    tensors, functions, edges = parse(dl.utils.plot_graph((a + b) * c))
    assert functions == ["Mul", "Add"]              # walked back from the result
    assert len(tensors) == 5 and all(t == "(3,) float64" for t in tensors)
    assert edges == 6                                # a, b -> Add -> s; s, c -> Mul -> y


def test_a_tensor_used_twice_is_one_node_with_two_edges():
    s = leaf(2) + leaf(2)
    tensors, functions, edges = parse(dl.utils.plot_graph(s * s))
    assert (len(tensors), len(functions), edges) == (4, 2, 6)   # s -> Mul twice


def test_fused_lstm_over_50_steps_is_one_node():
    x = dl.Tensor(np.ones((2, 50, 3), dtype="float32"))
    y = layers.Dense(2, name="out")(layers.LSTM(4, name="lstm")(x))
    tensors, functions, edges = parse(dl.utils.plot_graph(y))
    assert functions == ["Affine", "LSTMFunction"]
    # x, h0, c0, kernel, recurrent_kernel, bias -> LSTMFunction -> h; h, W, b -> Affine -> y. The
    # LSTM's sequence output is unused downstream, so it is not drawn.
    assert (len(tensors), edges) == (10, 11)
    assert "lstm/recurrent_kernel\\n(4, 16) float32" in tensors
    assert "(2, 50, 3) float32" in tensors


def test_a_chain_of_2000_adds_needs_no_recursion():
    a = leaf(1)
    y = a
    for _ in range(2000):
        y = y + a
    tensors, functions, edges = parse(dl.utils.plot_graph(y))
    assert (len(tensors), len(functions), edges) == (2001, 2000, 6000)


def test_labels_are_escaped_for_dot():
    dot = dl.utils.plot_graph(leaf(1, name='say "hi"\\\nnow') * 2.0)
    assert 'label="say \\"hi\\"\\\\\\nnow\\n(1,) float64"' in dot


def test_show_gradients_labels_grads_and_dashes_constant_inputs():
    a = leaf(2)
    y = (a * dl.Tensor(np.array([3.0, 4.0]))).sum()
    y.backward(retain_graph=True)
    dot = dl.utils.plot_graph(y, show_gradients=True)
    assert "grad (2,), norm 5" in dot                # ∂y/∂a = (3, 4)
    assert dot.count("[style=dashed]") == 1          # the constant gets no gradient
    assert "grad" not in dl.utils.plot_graph(y)


def test_a_graph_freed_by_backward_says_so():
    y = (leaf(2) * 2.0).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"freed by backward\(\).*retain_graph=True"):
        dl.utils.plot_graph(y)


def test_writes_dot_and_renders_svg_with_dot(tmp_path, monkeypatch):
    y = F.relu(leaf(2))
    text = dl.utils.plot_graph(y, tmp_path / "g.dot")
    assert (tmp_path / "g.dot").read_text() == text
    fake = tmp_path / "bin" / "dot"                  # stands in for Graphviz: copies stdin to -o
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\n[ "$1" = -Tsvg ] && [ "$2" = -o ] && cat > "$3"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    dl.utils.plot_graph(y, tmp_path / "g.svg")
    assert (tmp_path / "g.svg").read_text() == text


def test_svg_without_dot_says_to_install_graphviz(tmp_path, monkeypatch):
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"install graphviz .* \.dot"):
        dl.utils.plot_graph(leaf(1) * 2.0, tmp_path / "g.png")
    assert not (tmp_path / "g.png").exists()


def test_a_tensor_without_graph_is_one_node():
    assert parse(dl.utils.plot_graph(dl.Tensor([1.0, 2.0]))) == (["(2,) float32"], [], 0)
