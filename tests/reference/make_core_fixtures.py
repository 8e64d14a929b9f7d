"""Regenerate tests/reference/fixtures/core_dense.npz and core_layers.npz from Keras (torch backend).

    KERAS_BACKEND=torch python tests/reference/make_core_fixtures.py

core_dense.npz: for each case the input, the Keras layer's weights and its output, so the Dense
test can load the same weights and compare outputs without Keras installed.

core_layers.npz: the weightless core layers (Activation, Flatten, Reshape, Dropout, InputLayer)
from LAYER_CASES, each run by Keras on a random float32 input, stored as "<case>/x" and
"<case>/y". A Dropout case in training keeps Keras' output, whose zeros are Keras' mask: the
test replays that mask in minidl's Dropout. tests/minidl/layers/test_keras_values.py imports
LAYER_CASES and ``generate_layers`` (which imports Keras only when called) for its live runs.
"""
import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402

CASES = {"linear": (4, 7, 3), "relu": (5, 6, 8), "softmax": (3, 10, 4), "tanh_3d": (2, 5, 3)}
FIXTURES = pathlib.Path(__file__).parent / "fixtures"
OUT = FIXTURES / "core_dense.npz"
LAYERS_OUT = FIXTURES / "core_layers.npz"

# case -> (Keras layer class, constructor arguments, input shape, training)
LAYER_CASES: dict[str, tuple[str, dict, tuple, bool]] = {
    **{f"activation_{name}": ("Activation", dict(activation=name), (3, 5), False)
       for name in ("linear", "relu", "sigmoid", "tanh", "elu", "leaky_relu", "softmax", "log_softmax")},
    "activation_softmax_3d": ("Activation", dict(activation="softmax"), (2, 3, 4), False),
    "flatten_2d": ("Flatten", dict(), (3, 5), False),
    "flatten_3d": ("Flatten", dict(), (2, 3, 4), False),
    "flatten_4d": ("Flatten", dict(), (2, 3, 2, 2), False),
    "reshape_4x3": ("Reshape", dict(target_shape=(4, 3)), (2, 3, 4), False),
    "reshape_minus1x2": ("Reshape", dict(target_shape=(-1, 2)), (2, 3, 4), False),
    "reshape_flat_to_3d": ("Reshape", dict(target_shape=(2, 3, 2)), (1, 12), False),
    "dropout_inference": ("Dropout", dict(rate=0.5), (4, 6), False),
    "dropout_training": ("Dropout", dict(rate=0.3, seed=5), (40, 25), True),
    "dropout_training_noise_shape": ("Dropout", dict(rate=0.5, noise_shape=(None, 1, 6), seed=6), (8, 5, 6), True),
    "input_layer": ("InputLayer", dict(shape=(3, 2)), (4, 3, 2), False),
    "input_layer_any_steps": ("InputLayer", dict(shape=(None, 2)), (2, 5, 2), False),
}


def dense_case(keras, name, batch, features, units, seed):
    rng = np.random.default_rng(seed)
    activation = name.split("_")[0]
    shape = (batch, 4, features) if name.endswith("3d") else (batch, features)
    x = rng.normal(size=shape).astype("float32")
    layer = keras.layers.Dense(units, activation=activation)
    layer.build(shape)
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, rng.normal(size=bias.shape).astype("float32")])
    y = np.asarray(layer(x).detach().cpu().numpy())
    return {f"{name}/x": x, f"{name}/kernel": layer.get_weights()[0], f"{name}/bias": layer.get_weights()[1],
            f"{name}/y": y}


def generate_layers() -> dict[str, np.ndarray]:
    """Keras' output for each LAYER_CASES entry, as {"<case>/x": ..., "<case>/y": ...}."""
    import keras  # noqa: PLC0415 (the tests import this module without Keras)

    rng = np.random.default_rng(14)
    arrays = {}
    for case, (class_name, kwargs, shape, training) in LAYER_CASES.items():
        x = rng.normal(size=shape).astype("float32")
        if class_name == "InputLayer":  # not callable on arrays: an identity model is what it does
            inputs = keras.Input(shape=kwargs["shape"])
            y = keras.Model(inputs, inputs)(x)
        else:
            y = getattr(keras.layers, class_name)(**kwargs)(x, training=training)
        arrays[f"{case}/x"] = x
        arrays[f"{case}/y"] = keras.ops.convert_to_numpy(y)
    return arrays


def load_layers() -> dict[str, dict[str, np.ndarray]]:
    """core_layers.npz as {case: {"x": ..., "y": ...}}."""
    out: dict[str, dict[str, np.ndarray]] = {}
    with np.load(LAYERS_OUT, allow_pickle=False) as data:
        for key in data.files:
            if "/" in key:
                case, field = key.split("/")
                out.setdefault(case, {})[field] = data[key]
    return out


def write_dense(keras):
    keras.utils.set_random_seed(0)
    arrays = {}
    for seed, (name, sizes) in enumerate(CASES.items()):
        arrays.update(dense_case(keras, name, *sizes, seed))
    arrays["keras_version"] = np.frombuffer(keras.__version__.encode(), dtype=np.uint8)
    OUT.parent.mkdir(exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT}")


def write_layers(keras):
    arrays = generate_layers()
    arrays["keras_version"] = np.frombuffer(keras.__version__.encode(), dtype=np.uint8)
    np.savez_compressed(LAYERS_OUT, **arrays)
    print(f"wrote {LAYERS_OUT}")


def main():
    import keras
    write_dense(keras)
    write_layers(keras)


if __name__ == "__main__":
    main()
