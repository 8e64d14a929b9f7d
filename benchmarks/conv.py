"""Convolution training step: minidl beside PyTorch and Keras (torch backend), same machine.

    python benchmarks/conv.py [--repeats 20] [--rounds 3] [--device cpu]

Two models, each timed as forward + backward + Adam step on one batch:

    cnn2d:  (32, 40, 40, 1) -> Conv2D(32, 3x3, relu) -> MaxPooling2D(2) -> Conv2D(64, 3x3, relu)
            -> MaxPooling2D(2) -> Flatten -> Dense(10), sparse cross-entropy from logits
    conv1d: (32, 50, 13) -> Conv1D(64, 5, relu) -> GlobalAveragePooling1D -> Dense(10)

Each library runs in its own subprocess (NumPy's spinning OpenBLAS threads would slow torch in a
shared process). For minidl the record also gives the bytes of the im2col buffers (the forward
col matrices kept for backward) and the peak of NumPy allocations in one step (tracemalloc).
Results: benchmarks/results/conv.json, one record per (model, library).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
from pathlib import Path

from _timing import cpu_name, environment, minidl_train_step, save_records, take_turns, time_steps  # benchmarks/ is the script's folder, first on sys.path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "conv.json"
SHAPES = {"cnn2d": (32, 40, 40, 1), "conv1d": (32, 50, 13)}
LIBRARIES = ("minidl", "torch", "keras")


def _data(model: str):
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.normal(size=SHAPES[model]).astype("float32")
    y = rng.integers(0, 10, size=SHAPES[model][0])
    return x, y


# --- one library per process -----------------------------------------------------------------------
def run_minidl(model: str, repeats: int, device: str) -> dict:
    sys.path.insert(0, str(ROOT))
    import tracemalloc

    import minidl as dl
    from minidl.functional import conv as conv_module, conv_pool as conv_pool_module
    from minidl.layers.conv import Conv1D, Conv2D
    from minidl.layers.core import Dense, Flatten
    from minidl.layers.pooling import GlobalAveragePooling1D, MaxPooling2D

    if device == "gpu":
        dl.backend.use("cupy")
    dl.random.seed(0)
    if model == "cnn2d":
        layers = [Conv2D(32, 3, activation="relu"), MaxPooling2D(2), Conv2D(64, 3, activation="relu"),
                  MaxPooling2D(2), Flatten(), Dense(10)]
    else:
        layers = [Conv1D(64, 5, activation="relu"), GlobalAveragePooling1D(), Dense(10)]
    step = minidl_train_step(layers, *_data(model), device)
    col_bytes = []
    # the col matrices: im2col's, and those a convolution fused with its pool copies out of
    # conv_pool.pooled_patches (the size of the view is the size of its copy)
    originals = {module: getattr(module, name) for module, name in
                 ((conv_module, "im2col"), (conv_pool_module, "pooled_patches"))}

    def counting(original):
        def counted(*args, **kwargs):
            col = original(*args, **kwargs)
            col_bytes.append(int(col.nbytes))
            return col
        return counted

    times = time_steps(step, repeats)[0]
    for module, original in originals.items():
        setattr(module, original.__name__, counting(original))
    dl.workspace.clear()  # a step on an empty pool: the peak counts the buffers it reuses too
    tracemalloc.start()
    step()
    peak = tracemalloc.get_traced_memory()[1] if device == "cpu" else None
    tracemalloc.stop()
    for module, original in originals.items():
        setattr(module, original.__name__, original)
    return {"version": dl.__version__, "times": times, "im2col_bytes": col_bytes, "step_peak_bytes": peak}


def run_torch(model: str, repeats: int, device: str) -> dict:
    import torch
    torch.manual_seed(0)
    dev = "cuda" if device == "gpu" else "cpu"
    if model == "cnn2d":
        net = torch.nn.Sequential(torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                  torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                  torch.nn.Flatten(), torch.nn.Linear(64 * 8 * 8, 10))
    else:
        net = torch.nn.Sequential(torch.nn.Conv1d(13, 64, 5), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool1d(1),
                                  torch.nn.Flatten(), torch.nn.Linear(64, 10))
    net = net.to(dev)
    x_np, y_np = _data(model)
    # torch's native layout is channels first; the data is converted once, outside the timing
    x = torch.tensor(x_np).movedim(-1, 1).contiguous().to(dev)
    y = torch.tensor(y_np).to(dev)
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad()
        loss_fn(net(x), y).backward()
        optimizer.step()
        if dev == "cuda":
            torch.cuda.synchronize()

    return {"version": torch.__version__, "times": time_steps(step, repeats)[0],
            "threads": torch.get_num_threads()}


def run_keras(model: str, repeats: int, device: str) -> dict:
    os.environ["KERAS_BACKEND"] = "torch"
    import keras
    keras.utils.set_random_seed(0)
    if model == "cnn2d":
        net = keras.Sequential([keras.Input(SHAPES[model][1:]), keras.layers.Conv2D(32, 3, activation="relu"),
                                keras.layers.MaxPooling2D(2), keras.layers.Conv2D(64, 3, activation="relu"),
                                keras.layers.MaxPooling2D(2), keras.layers.Flatten(), keras.layers.Dense(10)])
    else:
        net = keras.Sequential([keras.Input(SHAPES[model][1:]), keras.layers.Conv1D(64, 5, activation="relu"),
                                keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(10)])
    net.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data(model)
    return {"version": keras.__version__, "times": time_steps(lambda: net.train_on_batch(x, y), repeats)[0]}


WORKERS = {"minidl": run_minidl, "torch": run_torch, "keras": run_keras}


def worker(library: str, model: str, repeats: int, device: str) -> None:
    out = WORKERS[library](model, repeats, device)
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out["environment"] = environment()
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed steps per process")
    parser.add_argument("--rounds", type=int, default=3, help="processes per library, taking turns")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--models", nargs="+", default=list(SHAPES))
    parser.add_argument("--libraries", nargs="+", default=list(LIBRARIES))
    parser.add_argument("--worker", nargs=2, metavar=("LIBRARY", "MODEL"), help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], args.repeats, args.device)
        return
    records = []
    for model in args.models:
        runs = take_turns(__file__, args.libraries, model, args.rounds,
                          ["--repeats", str(args.repeats), "--device", args.device],
                          {**os.environ, "KERAS_BACKEND": "torch"})
        for library, out in runs.items():
            if "error" in out:
                records.append({"name": f"conv/{model}", "library": library, "error": out["error"]})
                continue
            times = out.pop("times")
            record = {"name": f"conv/{model}", "library": library, "version": out.pop("version"),
                      "device": f"{args.device} ({cpu_name()}, "
                                f"{os.cpu_count()} cores)" if args.device == "cpu" else args.device,
                      "dtype": "float32", "shapes": {"input": list(SHAPES[model])}, "step": "forward+backward+adam",
                      "repeats": len(times), "rounds": args.rounds, "median_seconds": statistics.median(times),
                      "min_seconds": min(times), "load_average_1min": os.getloadavg()[0], **out}
            records.append(record)
            print(f"{model:7s} {library:7s} median {record['median_seconds'] * 1e3:7.2f} ms  "
                  f"min {record['min_seconds'] * 1e3:7.2f} ms", file=sys.stderr)
    save_records(args.output, records)


if __name__ == "__main__":
    main()
