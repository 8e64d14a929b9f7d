"""minidl/quantize.py: int8 per-channel kernels, the quantised model, its file."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import minidl as dl
from minidl import layers
from minidl.quantize import dequantize_array, float16_up, quantize_array, quantized_weight_indices
from minidl.saving import ModelFileError


def test_float16_up_is_the_least_float16_not_below(rng):
    x = np.concatenate([rng.uniform(1e-4, 10, size=1000), [1.0, 0.5, 3e-8]]).astype(np.float32)
    up = float16_up(x)
    assert (up >= x).all() and np.array_equal(up.astype(np.float16).astype(np.float32), up)
    below = np.nextafter(up.astype(np.float16), np.float16(-np.inf)).astype(np.float32)
    assert (below < x).all()
    assert up[-3] == 1.0 and up[-2] == 0.5   # float16 values stay as they are


def test_one_scale_per_output_channel(rng):
    weight = rng.normal(size=(6, 4)).astype(np.float32)
    weight[:, 1] *= 100                      # one large column must not coarsen the others
    weight[:, 3] = 0
    q, scales = quantize_array(weight)
    assert q.dtype == np.int8 and np.abs(q).max() == 127
    exact = np.abs(weight[:, :3]).max(axis=0) / 127
    # the float16 scale just above max/127: |q| <= 127 holds, and the largest lands on 127
    assert (scales[:3] >= exact).all() and (scales[:3] <= exact * (1 + 2 ** -10)).all()
    assert (np.abs(q[:, :3]).max(axis=0) == 127).all()
    assert np.array_equal(scales.astype(np.float16).astype(np.float32), scales)
    assert scales[3] == 1 and not q[:, 3].any()
    error = np.abs(dequantize_array(q, scales) - weight)
    assert (error <= scales / 2 + 1e-7).all()
    assert error[:, 0].max() < np.abs(weight[:, 0]).max() / 200


def test_conv_kernels_get_a_scale_per_filter(rng):
    kernel = rng.normal(size=(3, 3, 2, 5))
    q, scales = quantize_array(kernel)
    assert q.shape == kernel.shape and scales.shape == (5,)
    np.testing.assert_allclose(scales, np.abs(kernel).max(axis=(0, 1, 2)) / 127, rtol=1e-3)


def test_a_kernel_too_large_for_float16_scales_is_refused():
    with pytest.raises(ValueError, match=r"float16 scales"):
        quantize_array(np.full((2, 2), 1e7, dtype=np.float32))


def small_model():
    return dl.Sequential([layers.Input((None, 4)), layers.Masking(0.0), layers.Conv1D(6, 3, padding="same"),
                          layers.Bidirectional(layers.LSTM(5, return_sequences=True)),
                          layers.TimeDistributed(layers.Dense(4)), layers.GRU(3), layers.BatchNormalization(),
                          layers.Dense(3, activation="softmax")])


def functional_model():
    """Two inputs, a Dense shared by both, a GRU, two outputs."""
    a, b = layers.Input((5, 3), name="left"), layers.Input((5, 3), name="right")
    shared = layers.Dense(4, name="shared")
    joined = layers.Concatenate()([shared(a), shared(b)])
    digit = layers.Dense(3, activation="softmax", name="digit")(layers.GRU(6, name="gru")(joined))
    level = layers.Dense(1, name="level")(layers.GlobalAveragePooling1D()(shared(b)))
    return dl.Model([a, b], [digit, level])


def test_every_kernel_is_quantised_biases_rounded_to_float16_and_nothing_else_changes(rng):
    model = small_model()
    names = [model.weights[i].name.split("/")[-1] for i in quantized_weight_indices(model)]
    assert names.count("kernel") == 6 and names.count("recurrent_kernel") == 3   # conv, 2 LSTM, TD, GRU, Dense
    x = rng.normal(size=(5, 7, 4)).astype(np.float32)
    model.set_weights([rng.normal(scale=0.3, size=w.shape) for w in model.get_weights()[:-6]] +
                      model.get_weights()[-6:])   # biases not zero; BatchNormalization's statistics as built
    original = [w.copy() for w in model.get_weights()]
    quantized = dl.quantize(model, calibration_data=x)
    for before, now in zip(original, model.get_weights()):   # the original is untouched
        np.testing.assert_array_equal(before, now)
    record = quantized.quantization
    biases = [i for i, w in enumerate(quantized.weights) if w.name.endswith("/bias")]
    assert record["float16"] == biases and len(biases) == 6
    for i, (before, after) in enumerate(zip(original, quantized.get_weights())):
        if i in record["weights"]:
            q = after / record["weights"][i]
            assert np.array_equal(q, np.rint(q)) and np.abs(q).max() == 127 and np.unique(q).size <= 255
            assert not np.array_equal(before, after)
        elif i in biases:
            np.testing.assert_array_equal(after, before.astype(np.float16).astype(np.float32))
        else:
            np.testing.assert_array_equal(before, after)
    change = np.abs(quantized.predict(x) - model.predict(x)).max()
    assert 0 < change < 0.02
    assert record["calibration"]["max_abs_output_change"] == pytest.approx(change, rel=1e-6)
    assert 0 <= record["calibration"]["same_class"] <= 1


def test_float16_biases_can_be_left_out(rng):
    model = dl.Sequential([layers.Input((3,)), layers.Dense(2)])
    model.set_weights([rng.normal(size=(3, 2)), rng.normal(size=2)])
    quantized = dl.quantize(model, float16_biases=False)
    assert quantized.quantization["float16"] == []
    np.testing.assert_array_equal(quantized.get_weights()[1], model.get_weights()[1])


def test_the_file_packs_three_members_and_loads_to_the_same_outputs(rng, tmp_path):
    model = small_model()
    quantized = dl.quantize(model)
    dl.quantize.save(quantized, tmp_path / "q.npz", metadata={"task": "test"})
    metadata = dl.saving.read_metadata(tmp_path / "q.npz")
    assert metadata["task"] == "test"
    assert metadata["quantization"]["kernels"] == sorted(quantized.quantization["weights"])
    with np.load(tmp_path / "q.npz", allow_pickle=False) as archive:
        dtypes = {name: archive[name].dtype for name in archive.files}
        kernel_values = sum(quantized.get_weights()[i].size for i in quantized.quantization["weights"])
        assert archive["weight_0000"].shape == (kernel_values,)   # every kernel, one byte a value
    assert dtypes == {"weight_0000": np.int8, "weight_0001": np.float16, "weight_0002": np.float32,
                      "config": np.uint8}
    loaded = dl.quantize.load(tmp_path / "q.npz")
    for saved, back in zip(quantized.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(saved, back)
    for i, scales in quantized.quantization["weights"].items():
        np.testing.assert_array_equal(loaded.quantization["weights"][i], scales)
    assert loaded.quantization["float16"] == quantized.quantization["float16"]
    x = rng.normal(size=(3, 6, 4)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x), quantized.predict(x))


def test_the_file_is_deflated_and_four_times_smaller_for_a_model_of_kernels(rng, tmp_path):
    model = dl.Sequential([layers.Input((256,)), layers.Dense(256, activation="relu"), layers.Dense(64)])
    model.set_weights([rng.normal(scale=0.1, size=w.shape) for w in model.get_weights()])
    dl.quantize.save(dl.quantize(model), tmp_path / "q.npz")
    model.save(tmp_path / "float.npz")
    with zipfile.ZipFile(tmp_path / "q.npz") as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    # kernels are 99.6% of the weights: a byte a value where float32 takes four; normal weights
    # use the levels near zero most, which deflate exploits, and pays for the rest
    ratio = (tmp_path / "float.npz").stat().st_size / (tmp_path / "q.npz").stat().st_size
    assert ratio > 4.0
    x = rng.normal(size=(3, 256)).astype(np.float32)
    expected = model.predict(x)   # outputs up to ~4: 256 inputs' rounding errors add up
    assert np.abs(dl.quantize.load(tmp_path / "q.npz").predict(x) - expected).max() < 0.02 * np.abs(expected).max()


def test_plain_load_model_refuses_int8_kernels_and_load_refuses_float_files(tmp_path):
    model = small_model()
    dl.quantize.save(dl.quantize(model), tmp_path / "q.npz")
    with pytest.raises(ValueError, match=r"int8"):
        dl.load_model(tmp_path / "q.npz")
    with pytest.raises(ModelFileError, match=r"holds 3 weight arrays"):
        dl.load_model(tmp_path / "q.npz", allow_non_float=True)
    model.save(tmp_path / "float.npz")
    with pytest.raises(ModelFileError, match=r"no quantised model"):
        dl.quantize.load(tmp_path / "float.npz")


def test_save_refuses_a_model_off_its_grid():
    quantized = dl.quantize(small_model())
    weight = quantized.weights[quantized_weight_indices(quantized)[0]]
    weight.data = weight.data + 1e-3
    with pytest.raises(ValueError, match=r"changed since quantize"):
        dl.quantize.save(quantized, "unused.npz")
    quantized = dl.quantize(small_model())
    bias = quantized.weights[quantized.quantization["float16"][0]]
    bias.data = bias.data + np.float32(1e-5)   # off the float16 grid
    with pytest.raises(ValueError, match=r"weight \d+ \(.*bias\).*changed since quantize"):
        dl.quantize.save(quantized, "unused.npz")
    with pytest.raises(ValueError, match=r"is not quantised"):
        dl.quantize.save(small_model(), "unused.npz")


def test_nothing_to_quantise_is_an_error():
    with pytest.raises(ValueError, match=r"no Dense, Conv or recurrent kernel"):
        dl.quantize(dl.Sequential([layers.Input((3,)), layers.Activation("relu")]))


def test_an_unbuilt_or_subclassed_model_is_refused_by_name():
    with pytest.raises(ValueError, match=r"Sequential 'unbuilt' is not built; give its first layer an input shape"):
        dl.quantize(dl.Sequential([layers.Dense(2)], name="unbuilt"))

    class Custom(dl.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    custom = Custom()
    custom(np.zeros((1, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"expected a built Sequential or functional model.*Custom.*subclassed"):
        dl.quantize(custom)


# --- functional models ------------------------------------------------------------------------------
def test_a_functional_model_round_trips_and_its_shared_kernel_is_quantised_once(rng, tmp_path):
    model = functional_model()
    model.set_weights([rng.normal(scale=0.5, size=w.shape) for w in model.get_weights()])
    original = [w.copy() for w in model.get_weights()]
    x = [rng.normal(size=(4, 5, 3)).astype(np.float32) for _ in range(2)]
    quantized = dl.quantize(model, calibration_data=x)
    for before, now in zip(original, model.get_weights()):
        np.testing.assert_array_equal(before, now)
    names = [quantized.weights[i].name for i in sorted(quantized.quantization["weights"])]
    assert names == ["shared/kernel", "gru/kernel", "gru/recurrent_kernel", "digit/kernel", "level/kernel"]
    for i, scales in quantized.quantization["weights"].items():   # on the int8 grid
        q = quantized.get_weights()[i] / scales
        assert np.array_equal(q, np.rint(q)) and np.abs(q).max() <= 127
    calibration = quantized.quantization["calibration"]
    assert set(calibration["outputs"]) == {"digit", "level"} and "same_class" in calibration["outputs"]["digit"]
    assert calibration["max_abs_output_change"] == max(o["max_abs_output_change"]
                                                       for o in calibration["outputs"].values()) > 0
    dl.quantize.save(quantized, tmp_path / "q.npz")
    loaded = dl.quantize.load(tmp_path / "q.npz")
    assert type(loaded) is dl.Model and loaded.input_names == ["left", "right"]
    for expected, got in zip(quantized.predict(x), loaded.predict(x)):
        np.testing.assert_array_equal(got, expected)
    for expected, got in zip(model.predict(x), loaded.predict(x)):
        assert 0 < np.abs(got - expected).max() < 0.05


def test_a_functional_model_of_a_nested_sequential_is_quantised_inside(rng, tmp_path):
    inner = dl.Sequential([layers.Input((4,)), layers.Dense(3, name="inner_dense")], name="inner")
    x = layers.Input((4,), name="x")
    model = dl.Model(x, layers.Dense(2, name="outer")(inner(x)))
    quantized = dl.quantize(model)
    assert [quantized.weights[i].name for i in sorted(quantized.quantization["weights"])] == \
        ["inner_dense/kernel", "outer/kernel"]
    dl.quantize.save(quantized, tmp_path / "q.npz")
    batch = rng.normal(size=(2, 4)).astype(np.float32)
    np.testing.assert_array_equal(dl.quantize.load(tmp_path / "q.npz").predict(batch), quantized.predict(batch))


# --- damaged files ------------------------------------------------------------------------------------
def rewrite(tmp_path, change) -> str:
    """A quantised file of small_model whose arrays (a dict, the config as parsed JSON) ``change`` edits."""
    dl.quantize.save(dl.quantize(small_model()), tmp_path / "q.npz")
    with np.load(tmp_path / "q.npz", allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    document = json.loads(arrays.pop("config").tobytes())
    change(arrays, document)
    arrays["config"] = np.frombuffer(json.dumps(document).encode(), dtype=np.uint8)
    np.savez(tmp_path / "bad.npz", **arrays)
    return tmp_path / "bad.npz"


def put(name, value):
    def change(arrays, document):
        arrays[name] = value(arrays[name])
    return change


def set_stored(key, value):
    def change(arrays, document):
        document["metadata"]["quantization"][key] = value
    return change


@pytest.mark.parametrize("change, message", [
    (put("weight_0000", lambda q: q[:-1]), r"weight_0000 is int8 of shape \(\d+,\); the model .* needs int8 of shape"),
    (put("weight_0002", lambda w: w.astype(np.float64)), r"weight_0002 is float64 .* needs float32"),
    (put("weight_0001", lambda h: np.concatenate([h, h[:1]])), r"weight_0001 is float16 of shape"),
    (put("weight_0000", lambda q: np.where(np.arange(q.size) == 0, np.int8(-128), q)), r"holds -128"),
    (put("weight_0001", lambda h: np.where(np.arange(h.size) == 0, np.float16(np.inf), h)), r"NaN or infinite"),
    (put("weight_0001", lambda h: np.where(np.arange(h.size) == 0, np.float16(-1), h)), r"scales .* positive"),
    (set_stored("kernels", [3, 1]), r"kernels must be increasing weight positions"),
    (set_stored("kernels", [10 ** 6]), r"kernels must be increasing weight positions under \d+"),
    (set_stored("float16", "all"), r"float16 must be increasing"),
    (set_stored("kernels", None), r"kernels must be"),
])
def test_a_damaged_file_is_refused_before_use(tmp_path, change, message):
    with pytest.raises(ModelFileError, match=message):
        dl.quantize.load(rewrite(tmp_path, change))


def test_a_file_of_the_old_layout_or_with_other_members_is_refused(tmp_path):
    def old_layout(arrays, document):
        del document["metadata"]["quantization"]["kernels"]
    with pytest.raises(ModelFileError, match=r"older quantised layout"):
        dl.quantize.load(rewrite(tmp_path, old_layout))

    def extra_member(arrays, document):
        arrays["weight_0003"] = np.zeros(2, np.float32)
    with pytest.raises(ModelFileError, match=r"holds weight_0000, weight_0001, weight_0002 and 'config'"):
        dl.quantize.load(rewrite(tmp_path, extra_member))
