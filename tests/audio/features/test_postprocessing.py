"""audio.features.postprocessing: deltas against psf, CMVN whole and sliding."""

from __future__ import annotations

import numpy as np
import pytest

from audio import features as F
from tests.audio._helpers import assert_close_to_range


def test_deltas_match_psf_formula(reference):
    features = reference["speechlike_8k/htk"]
    assert_close_to_range(F.deltas(features, width=2), reference["speechlike_8k/htk_delta"])
    ramp = np.arange(10.0)[:, None] * np.ones((1, 3))
    d = F.deltas(ramp, width=2)
    np.testing.assert_allclose(d[2:-2], 1.0)  # slope of a ramp
    np.testing.assert_allclose(F.deltas(ramp, order=2)[4:-4], 0.0)  # its acceleration
    batch = np.stack([features, 2 * features])
    np.testing.assert_allclose(F.deltas(batch)[1], 2 * F.deltas(features), rtol=1e-5)


def test_cmvn_whole_and_sliding():
    x = np.random.default_rng(3).normal(3.0, 2.0, size=(2, 50, 4))
    y = F.cmvn(x)
    np.testing.assert_allclose(y.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(y.std(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(F.cmvn(x, variance=False).std(axis=1), x.std(axis=1))
    sliding = F.cmvn(x, window=11)
    t = 20  # an inside frame: the window is frames 15..25
    segment = x[:, 15:26]
    expected = (x[:, t] - segment.mean(axis=1)) / (segment.std(axis=1) + 1e-10)
    np.testing.assert_allclose(sliding[:, t], expected, rtol=1e-9)
    np.testing.assert_allclose(F.cmvn(x, window=1000), F.cmvn(x), rtol=1e-9)
    with pytest.raises(ValueError, match="window must be a positive number of frames"):
        F.cmvn(x, window=0)
