"""A three-armed spiral, learned by a two-layer network: minidl's smallest complete story.

Data -> model -> training -> result -> picture, in the Keras style:

    python examples/spiral.py --epochs 60 --out runs/spiral

Writes ``model.npz``, ``metrics.json`` and ``decision_boundary.png`` to the output folder. No
straight line separates the arms, so a linear model cannot exceed about 50% here; the hidden
ReLU layer bends the boundaries around them.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import time

import numpy as np

import minidl as dl
from minidl import layers


def make_spiral(points_per_class: int, classes: int = 3, noise: float = 0.2, seed: int = 0):
    """Points on ``classes`` interleaved spiral arms. Returns x (n, 2) float32, y (n,) int."""
    rng = np.random.default_rng(seed)
    radius = np.tile(np.linspace(0.05, 1.0, points_per_class), classes)
    label = np.repeat(np.arange(classes), points_per_class)
    angle = (label * 2 * np.pi / classes + radius * 4.0
             + rng.normal(scale=noise, size=radius.shape))
    x = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1).astype("float32")
    order = rng.permutation(len(label))  # fit's validation_split takes the last rows: mix classes
    return x[order], label[order]


def build_model(classes: int = 3) -> dl.Sequential:
    return dl.Sequential([
        layers.Input((2,)),
        layers.Dense(64, activation="relu"),
        layers.Dropout(0.1),
        layers.Dense(64, activation="relu"),
        layers.Dense(classes, activation="softmax"),
    ])


def plot_boundary(model, x, y, path: pathlib.Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(-1.2, 1.2, 300, dtype="float32")
    gx, gy = np.meshgrid(grid, grid)
    regions = model.predict(np.stack([gx.ravel(), gy.ravel()], 1), batch_size=4096).argmax(1)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.contourf(gx, gy, regions.reshape(gx.shape), levels=[-0.5, 0.5, 1.5, 2.5], alpha=0.3, cmap="brg")
    ax.scatter(x[:, 0], x[:, 1], c=y, s=6, cmap="brg")
    ax.set_title("minidl: decision regions on the spiral (test points)")
    ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/spiral")
    parser.add_argument("--verbose", type=int, default=1)
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    dl.random.seed(args.seed)
    x_train, y_train = make_spiral(300, seed=args.seed)
    x_test, y_test = make_spiral(100, seed=args.seed + 1)

    model = build_model()
    model.compile(optimizer=dl.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.summary()
    start = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=args.epochs, batch_size=32, validation_split=0.1,
                        verbose=args.verbose)
    seconds = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)

    model.save(out / "model.npz", metadata={"classes": ["arm 0", "arm 1", "arm 2"]})
    again = dl.load_model(out / "model.npz")
    same = bool(np.allclose(again.predict(x_test), model.predict(x_test)))
    plot_boundary(model, x_test, y_test, out / "decision_boundary.png")
    metrics = {"test_accuracy": accuracy, "test_loss": loss, "epochs": args.epochs, "seed": args.seed,
               "training_seconds": round(seconds, 2), "final_train_accuracy": history.history["accuracy"][-1],
               "reloaded_model_predicts_the_same": same}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(f"test accuracy {accuracy:.3f} (loss {loss:.3f}) after {args.epochs} epochs in {seconds:.1f} s")
    print(f"wrote {out / 'model.npz'}, {out / 'metrics.json'}, {out / 'decision_boundary.png'}")
    return metrics


if __name__ == "__main__":
    main()
