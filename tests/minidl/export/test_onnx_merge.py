"""minidl/export/onnx_merge.py: each merge layer, with its mask, gives minidl's outputs in ONNX Runtime."""
from __future__ import annotations

import numpy as np
import pytest

import minidl as dl
from minidl import layers
from tests.minidl.export.onnx_check import assert_graph_same_as_minidl, padded_batch


@pytest.mark.parametrize("kind", ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"])
def test_elementwise_merges_of_three_inputs_with_broadcasting(rng, kind):
    a, b, c = layers.Input((4, 5), name="a"), layers.Input((4, 5), name="b"), layers.Input((1, 5), name="c")
    given = [a, b] if kind == "Subtract" else [a, b, c]
    model = dl.Model(given, getattr(layers, kind)()(given))
    batches = [rng.normal(size=(3,) + tuple(x.shape[1:])).astype(np.float32) for x in given]
    assert_graph_same_as_minidl(model, batches)


@pytest.mark.parametrize("kind", ["Add", "Maximum", "Multiply"])
def test_elementwise_merge_ors_the_masks_for_the_recurrent_layer_after_it(rng, kind):
    a, b = layers.Input((None, 3), name="a"), layers.Input((None, 3), name="b")
    merged = getattr(layers, kind)()([layers.Masking(0.0)(a), layers.Masking(0.0)(b)])
    model = dl.Model([a, b], layers.LSTM(4, return_sequences=True)(merged))
    # row 0 is longer in b, row 1 in a: the OR is the longer of the two in each row
    got = assert_graph_same_as_minidl(model, [padded_batch(rng, [3, 7, 5], 3, steps=7),
                                             padded_batch(rng, [6, 2, 5], 3, steps=7)])
    assert got["output_mask"].sum(axis=1).tolist() == [6, 7, 5]


def test_one_unmasked_input_leaves_no_mask(rng):
    a, b = layers.Input((None, 3), name="a"), layers.Input((None, 3), name="b")
    model = dl.Model([a, b], layers.Add()([layers.Masking(0.0)(a), b]))
    got = assert_graph_same_as_minidl(model, [padded_batch(rng, [3, 5], 3), padded_batch(rng, [5, 5], 3)])
    assert "output_mask" not in got


@pytest.mark.parametrize("axis", [-1, 1, 2])
def test_concatenate_joins_values_and_masks(rng, axis):
    a, b = layers.Input((6, 3), name="a"), layers.Input((6, 3), name="b")
    model = dl.Model([a, b], layers.Concatenate(axis=axis)([layers.Masking(0.0)(a), b]))
    got = assert_graph_same_as_minidl(model, [padded_batch(rng, [2, 6, 4], 3, steps=6),
                                             rng.normal(size=(3, 6, 3)).astype(np.float32)])
    # b has no mask: all its steps count, so along the features every step is valid; along the
    # steps the second half is all valid and the first half is a's mask
    expected = [[6, 6, 6]] if axis != 1 else [[2 + 6, 6 + 6, 4 + 6]]
    assert got["output_mask"].sum(axis=1).tolist() == expected[0]


def test_a_recurrent_layer_after_concatenated_steps_is_refused(rng):
    a, b = layers.Input((None, 3), name="a"), layers.Input((None, 3), name="b")
    joined = layers.Concatenate(axis=1)([layers.Masking(0.0)(a), layers.Masking(0.0)(b)])
    model = dl.Model([a, b], layers.GRU(2)(joined))
    with pytest.raises(dl.export.ExportError, match=r"GRU '.*': its mask is not a run of valid steps"):
        dl.export.onnx(model)


@pytest.mark.parametrize("shapes, axes", [(((3, 4), (4, 2)), (2, 1)), (((3, 4), (2, 4)), 2), (((4, 3), (4, 2)), 1),
                                          (((4,), (4,)), 1), (((3, 4), (4,)), (2, 1)), (((4,), (4, 2)), (1, 1))])
@pytest.mark.parametrize("normalize", [False, True])
def test_dot(rng, shapes, axes, normalize):
    a, b = layers.Input(shapes[0], name="a"), layers.Input(shapes[1], name="b")
    model = dl.Model([a, b], layers.Dot(axes, normalize=normalize)([a, b]))
    assert_graph_same_as_minidl(model, [rng.normal(size=(2,) + s).astype(np.float32) for s in shapes])
