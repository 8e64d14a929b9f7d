"""audio.features.framing: pre-emphasis, padding, framing, windows, overlap-add."""

from __future__ import annotations

import math

import numpy as np
import pytest

from audio import features as F


def test_pre_emphasis_formula_and_batch():
    x = np.array([[1.0, 2.0, 4.0], [0.0, -1.0, 1.0]], dtype=np.float32)
    y = F.pre_emphasis(x, 0.5)
    np.testing.assert_allclose(y, [[1.0, 1.5, 3.0], [0.0, -1.0, 1.5]])
    assert y.dtype == np.float32
    assert F.pre_emphasis(x, 0) is x


@pytest.mark.parametrize("samples", [1, 150, 200, 201, 280, 281, 1000])
def test_pad_end_gives_psf_frame_count(samples):
    padded = F.pad_signal(np.ones(samples, np.float32), 200, 80, mode="end")
    expected = 1 if samples <= 200 else 1 + math.ceil((samples - 200) / 80)
    assert F.frame_signal(padded, 200, 80).shape == (expected, 200)
    assert np.all(padded[samples:] == 0) and np.all(padded[:samples] == 1)


def test_pad_center_puts_half_a_frame_on_each_side():
    padded = F.pad_signal(np.arange(1, 11, dtype=np.float32)[None], 4, 2, mode="center")
    np.testing.assert_array_equal(padded, [[0, 0, *range(1, 11), 0, 0]])
    with pytest.raises(ValueError, match="mode must be 'center' or 'end', got 'both'"):
        F.pad_signal(np.ones(4), 2, 1, mode="both")


def test_frame_signal_shapes_and_values():
    x = np.arange(10.0)
    frames = F.frame_signal(x, 4, 3)
    np.testing.assert_array_equal(frames, [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]])
    batch = F.frame_signal(np.stack([x, -x]), 4, 3)
    assert batch.shape == (2, 3, 4)
    np.testing.assert_array_equal(batch[1], -frames)
    with pytest.raises(ValueError, match=r"got 3 samples, fewer than one frame \(frame_length=4\)"):
        F.frame_signal(np.zeros(3), 4, 1)


@pytest.mark.parametrize("name", ["hann", "hamming"])
def test_window_matches_scipy_periodic(name):
    from scipy.signal import get_window
    np.testing.assert_allclose(F.window(name, 400, dtype=np.float64),
                               get_window(name, 400, fftbins=True), atol=1e-12)


def test_window_rectangular_povey_and_centring():
    assert np.all(F.window("rectangular", 5) == 1)
    povey = F.window("povey", 5, dtype=np.float64)
    np.testing.assert_allclose(povey, np.hanning(5) ** 0.85, atol=1e-12)
    centred = F.window("hann", 4, n_fft=8)
    assert centred.shape == (8,) and np.all(centred[:2] == 0) and np.all(centred[6:] == 0)
    with pytest.raises(ValueError, match="name must be one of .* got 'kaiser'"):
        F.window("kaiser", 4)
    with pytest.raises(ValueError, match="read-only"):
        F.window("hann", 4)[0] = 1.0  # cached: nobody may change it


def test_overlap_add_undoes_framing():
    x = np.arange(12.0)
    np.testing.assert_array_equal(F.overlap_add(F.frame_signal(x, 4, 4), 4), x)
    # hop half a frame: every inside sample is counted twice
    summed = F.overlap_add(F.frame_signal(np.stack([x, -x]), 4, 2), 2)
    np.testing.assert_array_equal(summed[0, 2:-2], 2 * x[2:-2])
    np.testing.assert_array_equal(summed[1], -summed[0])
    with pytest.raises(ValueError, match="frame_length=4 must be a multiple of hop_length=3"):
        F.overlap_add(np.zeros((2, 4)), 3)
