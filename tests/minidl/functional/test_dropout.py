"""Dropout (minidl/functional/dropout.py): inverted dropout, identity at inference, mask in backward."""
import numpy as np

import minidl as dl
import minidl.functional as F


def test_dropout_scales_kept_values_and_is_identity_at_inference():
    x = dl.Tensor(np.ones((200, 50)))
    y = F.dropout(x, 0.4, training=True).data
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.6)
    assert abs(kept.mean() - 0.6) < 0.02
    assert F.dropout(x, 0.4, training=False) is x


def test_dropout_gradient_follows_its_mask():
    x = dl.Tensor(np.ones((4, 5)), requires_grad=True)
    y = F.dropout(x, 0.5, training=True)
    F.sum(y).backward()
    np.testing.assert_allclose(x.grad, y.data)
