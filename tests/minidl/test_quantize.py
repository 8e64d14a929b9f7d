"""minidl/quantize.py: int8 per-channel kernels, the quantised model, its file."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

import minidl as dl
from minidl import layers
from minidl.quantize import dequantize_array, quantize_array, quantized_weight_indices


def test_one_scale_per_output_channel(rng):
    weight = rng.normal(size=(6, 4)).astype(np.float32)
    weight[:, 1] *= 100                      # one large column must not coarsen the others
    weight[:, 3] = 0
    q, scales = quantize_array(weight)
    assert q.dtype == np.int8 and np.abs(q).max() == 127
    np.testing.assert_allclose(scales[:3], np.abs(weight[:, :3]).max(axis=0) / 127, rtol=1e-6)
    assert scales[3] == 1 and not q[:, 3].any()
    error = np.abs(dequantize_array(q, scales) - weight)
    assert (error <= scales / 2 + 1e-7).all()
    assert error[:, 0].max() < np.abs(weight[:, 0]).max() / 200


def test_conv_kernels_get_a_scale_per_filter(rng):
    kernel = rng.normal(size=(3, 3, 2, 5))
    q, scales = quantize_array(kernel)
    assert q.shape == kernel.shape and scales.shape == (5,)
    np.testing.assert_allclose(scales, np.abs(kernel).max(axis=(0, 1, 2)) / 127, rtol=1e-6)


def small_model():
    return dl.Sequential([layers.Input((None, 4)), layers.Masking(0.0), layers.Conv1D(6, 3, padding="same"),
                          layers.Bidirectional(layers.LSTM(5, return_sequences=True)),
                          layers.TimeDistributed(layers.Dense(4)), layers.GRU(3), layers.BatchNormalization(),
                          layers.Dense(3, activation="softmax")])


def test_every_kernel_and_nothing_else_is_quantised(rng):
    model = small_model()
    names = [model.weights[i].name.split("/")[-1] for i in quantized_weight_indices(model)]
    assert names.count("kernel") == 6 and names.count("recurrent_kernel") == 3   # conv, 2 LSTM, TD, GRU, Dense
    x = rng.normal(size=(5, 7, 4)).astype(np.float32)
    original = [w.copy() for w in model.get_weights()]
    quantized = dl.quantize(model, calibration_data=x)
    for before, now in zip(original, model.get_weights()):   # the original is untouched
        np.testing.assert_array_equal(before, now)
    for i, (before, after) in enumerate(zip(original, quantized.get_weights())):
        if i in quantized.quantization["weights"]:
            assert np.unique(after / quantized.quantization["weights"][i]).size <= 255
            assert not np.array_equal(before, after)
        else:
            np.testing.assert_array_equal(before, after)
    change = np.abs(quantized.predict(x) - model.predict(x)).max()
    assert 0 < change < 0.02
    assert quantized.quantization["calibration"]["max_abs_output_change"] == pytest.approx(change, rel=1e-6)
    assert 0 <= quantized.quantization["calibration"]["same_class"] <= 1


def test_the_file_holds_int8_and_loads_to_the_same_outputs(rng, tmp_path):
    model = small_model()
    quantized = dl.quantize(model)
    dl.quantize.save(quantized, tmp_path / "q.npz", metadata={"task": "test"})
    model.save(tmp_path / "float.npz")
    metadata = dl.saving.read_metadata(tmp_path / "q.npz")
    assert metadata["task"] == "test" and set(metadata["quantization"]["weights"]) == \
        {str(i) for i in quantized.quantization["weights"]}
    loaded = dl.quantize.load(tmp_path / "q.npz")
    x = rng.normal(size=(3, 6, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x), quantized.predict(x))
    with zipfile.ZipFile(tmp_path / "q.npz") as archive:
        sizes = {info.filename: info.file_size for info in archive.infolist()}
    with zipfile.ZipFile(tmp_path / "float.npz") as archive:
        float_sizes = {info.filename: info.file_size for info in archive.infolist()}
    for i in quantized.quantization["weights"]:   # each kernel: a byte per value instead of four
        name = f"weight_{i:04d}.npy"
        assert sizes[name] - 128 <= (float_sizes[name] - 128) / 4 + 1


def test_the_file_is_deflated_and_near_four_times_smaller_for_a_model_of_kernels(rng, tmp_path):
    model = dl.Sequential([layers.Input((256,)), layers.Dense(256, activation="relu"), layers.Dense(64)])
    model.set_weights([rng.normal(scale=0.1, size=w.shape) for w in model.get_weights()])
    dl.quantize.save(dl.quantize(model), tmp_path / "q.npz")
    model.save(tmp_path / "float.npz")
    with zipfile.ZipFile(tmp_path / "q.npz") as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    # kernels are 99.5% of the weights: int8 is a byte a value where float32 is four; the
    # scales, biases, headers and config take the rest (and deflate wins some back: normal
    # weights use few of the 255 levels often)
    ratio = (tmp_path / "float.npz").stat().st_size / (tmp_path / "q.npz").stat().st_size
    assert ratio > 3.8
    x = rng.normal(size=(3, 256)).astype(np.float32)
    np.testing.assert_allclose(dl.quantize.load(tmp_path / "q.npz").predict(x), model.predict(x), atol=0.05)


def test_plain_load_model_refuses_int8_kernels_and_load_refuses_float_files(tmp_path):
    model = small_model()
    dl.quantize.save(dl.quantize(model), tmp_path / "q.npz")
    with pytest.raises(ValueError, match=r"int8"):
        dl.load_model(tmp_path / "q.npz")
    model.save(tmp_path / "float.npz")
    with pytest.raises(ValueError, match=r"no quantised model"):
        dl.quantize.load(tmp_path / "float.npz")


def test_save_refuses_a_model_off_its_grid():
    quantized = dl.quantize(small_model())
    weight = quantized.weights[quantized_weight_indices(quantized)[0]]
    weight.data = weight.data + 1e-3
    with pytest.raises(ValueError, match=r"changed since quantize"):
        dl.quantize.save(quantized, "unused.npz")
    with pytest.raises(ValueError, match=r"is not quantised"):
        dl.quantize.save(small_model(), "unused.npz")


def test_nothing_to_quantise_is_an_error():
    with pytest.raises(ValueError, match=r"no Dense, Conv or recurrent kernel"):
        dl.quantize(dl.Sequential([layers.Input((3,)), layers.Activation("relu")]))
