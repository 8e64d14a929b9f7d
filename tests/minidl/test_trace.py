"""dl.trace: a tiny MLP step recorded op by op, forward and backward."""
import numpy as np
import pytest

import minidl as dl
import minidl.functional as F
from minidl import layers


def mlp_step():
    x = dl.Tensor(np.random.default_rng(0).normal(size=(4, 5)).astype("float32"))
    hidden, out = layers.Dense(8, activation="relu"), layers.Dense(3)
    out(hidden(x))   # build the weights first, so the trace sees only the step
    return lambda: F.sparse_categorical_crossentropy(np.array([0, 1, 2, 1]), out(hidden(x)),
                                                     from_logits=True).mean()


def test_an_mlp_step_is_recorded_op_by_op():
    step = mlp_step()
    with dl.trace() as t:
        loss = step()
        assert all(r["backward_ms"] is None for r in t.records)
        loss.backward()
    assert [r["op"] for r in t.records] == ["Affine", "ReLU", "Affine",
                                            "SparseCrossentropyFromLogits", "Mean"]
    assert [r["index"] for r in t.records] == [0, 1, 2, 3, 4]
    assert [(r["inputs"], r["outputs"]) for r in t.records] == [
        ([(4, 5), (5, 8), (8,)], [(4, 8)]), ([(4, 8)], [(4, 8)]),
        ([(4, 8), (8, 3), (3,)], [(4, 3)]), ([(4, 3)], [(4,)]), ([(4,)], [()])]
    assert all(r["forward_ms"] >= 0 and r["backward_ms"] >= 0 for r in t.records)
    table = str(t)
    assert table == t.table() and "(4, 5), (5, 8), (8,) -> (4, 8)" in table
    assert table.splitlines()[0].split() == ["#", "op", "shapes", "forward", "ms", "backward", "ms"]
    assert len(table.splitlines()) == 1 + 5 + 1     # header, one row per op, totals


def test_nothing_is_recorded_outside_the_block():
    step = mlp_step()
    with dl.trace() as t:
        pass
    loss = step()
    loss.backward()
    assert t.records == []
    with pytest.raises(ZeroDivisionError):
        with dl.trace() as t:
            1 / 0
    step()
    assert t.records == []     # closed even though the block raised


def test_ops_without_a_graph_have_no_backward_time():
    with dl.trace() as t:
        with dl.no_grad():
            F.relu(dl.Tensor(np.ones(3), requires_grad=True))
    assert t.records[0]["op"] == "ReLU" and t.records[0]["backward_ms"] is None
    assert t.table().splitlines()[1].split()[-1] == "-"


def test_traces_nest():
    a = dl.Tensor(np.ones(2), requires_grad=True)
    with dl.trace() as outer:
        b = a * 2.0
        with dl.trace() as inner:
            c = b.sum()
            c.backward()
        a + 1.0
    assert [r["op"] for r in outer.records] == ["Mul", "Sum", "Add"]
    assert [r["op"] for r in inner.records] == ["Sum"]
    assert inner.records[0]["index"] == 0 and outer.records[1]["index"] == 1
    assert outer.records[0]["backward_ms"] is not None   # the backward ran while outer was open
