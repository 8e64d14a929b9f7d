"""What the three fused recurrent ops share: which activations fuse, and the boundary checks
that name the op, what was expected and what came."""
import numpy as np
import pytest

import minidl.functional as F
from minidl.functional.recurrent import can_fuse, gru, simple_rnn
from tests.minidl.functional.recurrent._helpers import make_inputs


def test_can_fuse_knows_names_and_minidl_functions_only():
    assert can_fuse("tanh", F.sigmoid, None, "relu", "linear")
    assert not can_fuse("tanh", "softmax")
    assert not can_fuse(lambda a: F.tanh(a))  # any other callable goes to the reference cell


def test_bad_mask_shape_and_unknown_activation():
    with pytest.raises(ValueError, match=r"gru: expected a mask of shape \(batch, steps\) = \(3, 5\), got shape \(3, 4\)"):
        gru(*make_inputs("gru"), mask=np.ones((3, 4), bool))
    with pytest.raises(ValueError, match="simple_rnn: the fused op supports activation in"):
        simple_rnn(*make_inputs("simple_rnn"), activation="softmax")
