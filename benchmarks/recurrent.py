"""Recurrent training step: minidl beside PyTorch and Keras (torch backend), same machine.

    python benchmarks/recurrent.py [--repeats 10] [--rounds 4] [--device cpu]

Models, each timed as forward + backward + Adam step on one batch of 32 sequences x 13 features
(MFCC-like), sparse cross-entropy from logits:

    lstm:       (32, 50, 13) -> LSTM(128) -> Dense(10)
    gru:        (32, 50, 13) -> GRU(128) -> Dense(10)   (Keras reset_after=True; torch's GRU is
                the same form)
    lstm_1000:  (32, 1000, 13) -> LSTM(128) -> Dense(10), fewer repeats; its record is mostly
                about memory: peak RSS of the process and, for minidl, the peak of NumPy
                allocations in one step (tracemalloc)

Each library runs in its own subprocess (NumPy's spinning OpenBLAS threads would slow torch in
a shared process). A recurrent step is one small GEMM per time step, and on a busy machine
threads of a BLAS or OpenMP pool wait on each other at every one of them; so each record also
gives the median CPU seconds of the process (all threads) and the load average, and
``--threads 1`` runs every library single-threaded, the comparison that a shared machine does
not distort.
Results: benchmarks/results/recurrent.json, one record per (model, library).
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
RESULTS = ROOT / "benchmarks" / "results" / "recurrent.json"
MODELS = {"lstm": ("LSTM", 50), "gru": ("GRU", 50), "lstm_1000": ("LSTM", 1000)}
BATCH, FEATURES, UNITS, CLASSES = 32, 13, 128, 10
LIBRARIES = ("minidl", "torch", "keras")


def _data(model: str):
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, MODELS[model][1], FEATURES)).astype("float32")
    y = rng.integers(0, CLASSES, size=BATCH)
    return x, y


# --- one library per process -----------------------------------------------------------------------
def run_minidl(model: str, repeats: int, device: str) -> dict:
    sys.path.insert(0, str(ROOT))
    import tracemalloc

    import minidl as dl
    from minidl.layers import recurrent
    from minidl.layers.core import Dense

    if device == "gpu":
        dl.backend.use("cupy")
    dl.random.seed(0)
    layers = [getattr(recurrent, MODELS[model][0])(UNITS), Dense(CLASSES)]
    step = minidl_train_step(layers, *_data(model), device)
    times, cpu_times = time_steps(step, repeats, warmup=1 if model == "lstm_1000" else 3)
    dl.workspace.clear()  # a step on an empty pool: the peak counts the buffers it reuses too
    tracemalloc.start()
    step()
    peak = tracemalloc.get_traced_memory()[1] if device == "cpu" else None
    tracemalloc.stop()
    return {"version": dl.__version__, "times": times, "cpu_times": cpu_times, "step_peak_bytes": peak}


def run_torch(model: str, repeats: int, device: str) -> dict:
    import torch
    torch.manual_seed(0)
    dev = "cuda" if device == "gpu" else "cpu"
    cell = getattr(torch.nn, MODELS[model][0])(FEATURES, UNITS, batch_first=True).to(dev)
    head = torch.nn.Linear(UNITS, CLASSES).to(dev)
    x_np, y_np = _data(model)
    x, y = torch.tensor(x_np).to(dev), torch.tensor(y_np).to(dev)
    optimizer = torch.optim.Adam(list(cell.parameters()) + list(head.parameters()), 1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad()
        outputs, _ = cell(x)
        loss_fn(head(outputs[:, -1]), y).backward()
        optimizer.step()
        if dev == "cuda":
            torch.cuda.synchronize()

    times, cpu_times = time_steps(step, repeats, warmup=1 if model == "lstm_1000" else 3)
    return {"version": torch.__version__, "times": times, "cpu_times": cpu_times,
            "torch_threads": torch.get_num_threads()}


def run_keras(model: str, repeats: int, device: str) -> dict:
    os.environ["KERAS_BACKEND"] = "torch"
    import keras
    keras.utils.set_random_seed(0)
    steps = MODELS[model][1]
    net = keras.Sequential([keras.Input((steps, FEATURES)), getattr(keras.layers, MODELS[model][0])(UNITS),
                            keras.layers.Dense(CLASSES)])
    net.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data(model)
    times, cpu_times = time_steps(lambda: net.train_on_batch(x, y), repeats, warmup=1 if model == "lstm_1000" else 3)
    return {"version": keras.__version__, "times": times, "cpu_times": cpu_times}


WORKERS = {"minidl": run_minidl, "torch": run_torch, "keras": run_keras}


def worker(library: str, model: str, repeats: int, device: str) -> None:
    out = WORKERS[library](model, repeats, device)
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out["environment"] = environment()
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per process")
    parser.add_argument("--rounds", type=int, default=4, help="processes per library, taking turns")
    parser.add_argument("--long-repeats", type=int, default=3, help="repeats of lstm_1000")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every library (OMP/OpenBLAS/MKL); default: each library's own")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--libraries", nargs="+", default=list(LIBRARIES))
    parser.add_argument("--worker", nargs=2, metavar=("LIBRARY", "MODEL"), help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], args.repeats, args.device)
        return
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    if args.threads:
        env.update({name: str(args.threads) for name in
                    ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    records = []
    for model in args.models:
        repeats = args.long_repeats if model == "lstm_1000" else args.repeats
        runs = take_turns(__file__, args.libraries, model, 1 if model == "lstm_1000" else args.rounds,
                          ["--repeats", str(repeats), "--device", args.device], env)
        for library, out in runs.items():
            if "error" in out:
                records.append({"name": f"recurrent/{model}", "library": library, "error": out["error"]})
                print(f"{model:9s} {library:7s} failed", file=sys.stderr)
                continue
            times, cpu_times = out.pop("times"), out.pop("cpu_times")
            kind, steps = MODELS[model]
            record = {"name": f"recurrent/{model}", "library": library, "version": out.pop("version"),
                      "device": f"{args.device} ({cpu_name()}, "
                                f"{os.cpu_count()} cores)" if args.device == "cpu" else args.device,
                      "dtype": "float32",
                      "shapes": {"input": [BATCH, steps, FEATURES], "layer": f"{kind}({UNITS})",
                                 "head": f"Dense({CLASSES})"},
                      "step": "forward+backward+adam", "repeats": len(times),
                      "rounds": 1 if model == "lstm_1000" else args.rounds,
                      "threads": env.get("OPENBLAS_NUM_THREADS", "default"),
                      "load_average": round(os.getloadavg()[0], 2),
                      "median_seconds": statistics.median(times), "min_seconds": min(times),
                      "median_cpu_seconds": statistics.median(cpu_times), **out}
            records.append(record)
            print(f"{model:9s} {library:7s} median {record['median_seconds'] * 1e3:8.2f} ms  "
                  f"cpu {record['median_cpu_seconds'] * 1e3:8.2f} ms  "
                  f"peak RSS {record['peak_rss_bytes'] / 2**20:7.1f} MiB", file=sys.stderr)
        save_records(args.output, records)  # after each model: a cut run keeps its part

if __name__ == "__main__":
    main()
