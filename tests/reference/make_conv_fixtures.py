"""Regenerate tests/reference/fixtures/conv_*.npz from Keras 3 (torch backend).

    KERAS_BACKEND=torch python -m tests.reference.make_conv_fixtures

Each case builds one Keras layer from CASES, gives it random weights, runs it on a random
float32 input and stores, under "<case>/...": x, the weights w0, w1, ... (Keras' order), y and,
for a training call, the weights after it (a0, a1, ...: BatchNormalization's moving statistics).
The tests build the minidl layer of the same name with the same arguments, load w0, w1, ... with
set_weights and compare, so Keras need not be installed to run them. The CASES table is imported
by the tests; Keras is imported only when the script runs.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).parent / "fixtures"

# file -> {case name: (Keras layer class, constructor arguments, input shape, training)}
CASES: dict[str, dict[str, tuple[str, dict, tuple, bool]]] = {
    "conv_conv2d": {
        "k3_valid": ("Conv2D", dict(filters=4, kernel_size=3), (2, 7, 6, 3), False),
        "k3_same_s2": ("Conv2D", dict(filters=4, kernel_size=3, strides=2, padding="same"), (2, 7, 6, 3), False),
        "k2_same_s2": ("Conv2D", dict(filters=3, kernel_size=2, strides=2, padding="same"), (1, 6, 7, 2), False),
        "k4x3_same": ("Conv2D", dict(filters=3, kernel_size=(4, 3), padding="same"), (2, 5, 5, 2), False),
        "d2_same": ("Conv2D", dict(filters=2, kernel_size=3, dilation_rate=2, padding="same"), (2, 8, 7, 3), False),
        "d2_valid_relu": ("Conv2D", dict(filters=2, kernel_size=2, dilation_rate=2, activation="relu"),
                          (1, 6, 6, 2), False),
        "many_channels": ("Conv2D", dict(filters=24, kernel_size=3), (1, 5, 5, 16), False),
        "k1x3_s1x2_nobias": ("Conv2D", dict(filters=5, kernel_size=(1, 3), strides=(1, 2), use_bias=False),
                             (2, 6, 9, 3), False),
    },
    "conv_conv1d": {
        "k3_valid": ("Conv1D", dict(filters=4, kernel_size=3), (2, 10, 3), False),
        "k4_same_s2": ("Conv1D", dict(filters=4, kernel_size=4, strides=2, padding="same"), (2, 9, 3), False),
        "k5_same": ("Conv1D", dict(filters=6, kernel_size=5, padding="same"), (3, 11, 13), False),
        "k3_causal_d2": ("Conv1D", dict(filters=3, kernel_size=3, padding="causal", dilation_rate=2),
                         (2, 9, 2), False),
        "k3_same_s3": ("Conv1D", dict(filters=2, kernel_size=3, strides=3, padding="same"), (1, 10, 4), False),
        "k1_length1": ("Conv1D", dict(filters=3, kernel_size=1, activation="tanh"), (2, 1, 4), False),
    },
    "conv_pooling": {
        "max2d_2": ("MaxPooling2D", dict(pool_size=2), (2, 7, 6, 3), False),
        "max2d_3s2_same": ("MaxPooling2D", dict(pool_size=3, strides=2, padding="same"), (2, 7, 6, 3), False),
        "max2d_2x3_s1_same": ("MaxPooling2D", dict(pool_size=(2, 3), strides=1, padding="same"),
                              (1, 5, 6, 2), False),
        "avg2d_2": ("AveragePooling2D", dict(pool_size=2), (2, 7, 6, 3), False),
        "avg2d_3s2_same": ("AveragePooling2D", dict(pool_size=3, strides=2, padding="same"), (2, 7, 6, 3), False),
        "avg2d_2_s1_same": ("AveragePooling2D", dict(pool_size=2, strides=1, padding="same"), (1, 5, 4, 2), False),
        "max1d_2": ("MaxPooling1D", dict(pool_size=2), (2, 9, 3), False),
        "max1d_3s2_same": ("MaxPooling1D", dict(pool_size=3, strides=2, padding="same"), (2, 9, 3), False),
        "avg1d_2": ("AveragePooling1D", dict(pool_size=2), (2, 9, 3), False),
        "avg1d_4s3_same": ("AveragePooling1D", dict(pool_size=4, strides=3, padding="same"), (2, 10, 3), False),
        "gavg1d": ("GlobalAveragePooling1D", dict(), (2, 5, 3), False),
        "gmax1d": ("GlobalMaxPooling1D", dict(), (2, 5, 3), False),
        "gavg2d": ("GlobalAveragePooling2D", dict(), (2, 4, 5, 3), False),
        "gmax2d_keepdims": ("GlobalMaxPooling2D", dict(keepdims=True), (2, 4, 5, 3), False),
        "zeropad1d": ("ZeroPadding1D", dict(padding=(1, 2)), (2, 4, 3), False),
        "zeropad2d": ("ZeroPadding2D", dict(padding=((1, 0), (2, 1))), (2, 3, 4, 2), False),
    },
    "conv_normalization": {
        "bn_inference_4d": ("BatchNormalization", dict(), (4, 3, 5, 6), False),
        "bn_training_4d": ("BatchNormalization", dict(momentum=0.9), (4, 3, 5, 6), True),
        "bn_training_2d": ("BatchNormalization", dict(epsilon=1e-2), (8, 5), True),
        "bn_axis1_training": ("BatchNormalization", dict(axis=1), (4, 3, 5), True),
        "bn_noscale_inference": ("BatchNormalization", dict(scale=False, center=False), (3, 4, 5), False),
        "ln_3d": ("LayerNormalization", dict(), (2, 4, 6), False),
        "ln_nocenter": ("LayerNormalization", dict(center=False, epsilon=1e-5), (3, 7), False),
        "ln_axes": ("LayerNormalization", dict(axis=(1, 2)), (2, 3, 4), False),
    },
}


def generate(name: str) -> dict[str, np.ndarray]:
    import keras  # noqa: PLC0415 (only the script needs Keras)

    rng = np.random.default_rng(sum(map(ord, name)))
    arrays: dict[str, np.ndarray] = {}
    for case, (class_name, kwargs, shape, training) in CASES[name].items():
        layer = getattr(keras.layers, class_name)(**kwargs)
        x = rng.normal(size=shape).astype("float32")
        layer.build(shape)
        weights = [rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()]
        if class_name == "BatchNormalization":  # the last weight, moving_variance, must be positive
            weights[-1] = rng.uniform(0.5, 2.0, size=weights[-1].shape).astype("float32")
        layer.set_weights(weights)
        y = keras.ops.convert_to_numpy(layer(x, training=training))
        if class_name.startswith("AveragePooling") and kwargs.get("padding") == "same":
            y = _average_pool_same(x, kwargs)
        arrays[f"{case}/x"] = x
        arrays[f"{case}/y"] = y
        for i, w in enumerate(weights):
            arrays[f"{case}/w{i}"] = w
        if training:
            for i, w in enumerate(layer.get_weights()):
                arrays[f"{case}/a{i}"] = w
    return arrays


def _average_pool_same(x: np.ndarray, kwargs: dict) -> np.ndarray:
    """Keras' 'same' average pooling (TensorFlow and JAX backends): zero padding, extra step at the
    end, each window divided by its count of real entries. Keras' torch backend (3.x before
    keras-team/keras#23233) replicates edge values for uneven padding instead, so this reference is
    computed here with torch: a zero-padded sum pool divided by a pooled image of ones.
    """
    import torch  # noqa: PLC0415

    rank = x.ndim - 2
    pool = kwargs["pool_size"]
    pool = (pool,) * rank if isinstance(pool, int) else tuple(pool)
    strides = kwargs.get("strides") or pool
    strides = (strides,) * rank if isinstance(strides, int) else tuple(strides)
    pads = []
    for n, k, s in zip(x.shape[1:-1], pool, strides):
        total = max((-(-n // s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    flat = [p for pair in reversed(pads) for p in pair]  # torch pads the last axis first
    channels_first = torch.tensor(x).movedim(-1, 1)
    ones = torch.ones_like(channels_first[:1, :1])
    pool_fn = torch.nn.functional.avg_pool1d if rank == 1 else torch.nn.functional.avg_pool2d
    total = pool_fn(torch.nn.functional.pad(channels_first, flat), pool, strides)
    count = pool_fn(torch.nn.functional.pad(ones, flat), pool, strides)
    return (total / count).movedim(1, -1).numpy()


def load(name: str) -> dict[str, dict[str, np.ndarray]]:
    """The fixture file ``name`` as {case: {"x": ..., "y": ..., "w0": ...}}."""
    out: dict[str, dict[str, np.ndarray]] = {}
    with np.load(FIXTURES / f"{name}.npz", allow_pickle=False) as data:
        for key in data.files:
            case, field = key.split("/")
            out.setdefault(case, {})[field] = data[key]
    return out


def main() -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    FIXTURES.mkdir(exist_ok=True)
    for name in CASES:
        np.savez_compressed(FIXTURES / f"{name}.npz", **generate(name))


if __name__ == "__main__":
    main()
