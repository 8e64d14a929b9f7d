"""audio.features.cepstrum: DCT-II (ortho) and the lifter in both numberings."""

from __future__ import annotations

import numpy as np
import pytest

from audio import features as F


def test_dct_matches_scipy_ortho():
    from scipy.fft import dct as scipy_dct
    x = np.random.default_rng(2).normal(size=(2, 5, 26))
    np.testing.assert_allclose(F.dct(x, 13), scipy_dct(x, type=2, norm="ortho")[..., :13],
                               atol=1e-12)
    with pytest.raises(ValueError, match="n_out must be between 1 and the input size 26, got 30"):
        F.dct(x, 30)


def test_lifter_htk_and_librosa_numbering():
    c = np.ones((1, 4))
    n = np.arange(4)
    np.testing.assert_allclose(F.lifter(c, 22), [1 + 11 * np.sin(np.pi * n / 22)])
    np.testing.assert_allclose(F.lifter(c, 22, first_index=1),
                               [1 + 11 * np.sin(np.pi * (n + 1) / 22)])
    assert F.lifter(c, 0) is c
