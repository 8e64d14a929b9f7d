"""Regenerate tests/reference/fixtures/core_dense.npz from Keras (torch backend).

    KERAS_BACKEND=torch python tests/reference/make_core_fixtures.py

For each case: the input, the Keras layer's weights and its output, so the Dense test can load
the same weights and compare outputs without Keras installed.
"""
import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402

CASES = {"linear": (4, 7, 3), "relu": (5, 6, 8), "softmax": (3, 10, 4), "tanh_3d": (2, 5, 3)}
OUT = pathlib.Path(__file__).parent / "fixtures" / "core_dense.npz"


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


def main():
    import keras
    keras.utils.set_random_seed(0)
    arrays = {}
    for seed, (name, sizes) in enumerate(CASES.items()):
        arrays.update(dense_case(keras, name, *sizes, seed))
    arrays["keras_version"] = np.frombuffer(keras.__version__.encode(), dtype=np.uint8)
    OUT.parent.mkdir(exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
