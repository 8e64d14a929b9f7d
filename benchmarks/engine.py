"""Engine overhead: per-op cost on tiny tensors, and one MLP training step, beside PyTorch and Keras.

    python benchmarks/engine.py [--repeats 30] [--libraries minidl torch keras] [--threads N]

Two benchmarks:

    op/<name>:  forward + backward of add, mul, matmul, tanh on 4x4 float32 tensors, in
                microseconds per op. The arrays are tiny, so this is the bookkeeping of the
                engine (graph nodes, dispatch, gradient accumulation), not arithmetic.
                minidl and torch.
    mlp_step:   784-256-256-10 ReLU MLP, batch 128, sparse cross-entropy from logits, Adam:
                forward + backward + optimizer step. minidl (Dense layers, the functional loss
                and minidl.optimizers.Adam, no fit), torch (nn.Sequential, torch.optim.Adam),
                Keras 3 on the torch backend (train_on_batch). For minidl the record also splits
                the step into forward, backward and optimizer medians.

Each library runs in its own subprocess: NumPy's OpenBLAS threads, left spinning after a
matmul, steal the cores from torch in a shared process and flatter every ratio. Threads and
OPENBLAS_* settings are left as the environment has them. Results: benchmarks/results/engine.json,
one record per (benchmark, library); ``python benchmarks/report.py`` prints them as tables.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _timing import cpu_name, environment, save_records, time_steps  # benchmarks/ is the script's folder, first on sys.path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "engine.json"
OPS = ("add", "mul", "matmul", "tanh")
OP_SHAPE = (4, 4)
OP_LOOPS = 2000          # ops per timed repeat: one op is a few microseconds
MLP = {"batch": 128, "features": 784, "hidden": [256, 256], "classes": 10}
BENCHMARKS = {"op": ("minidl", "torch"), "mlp_step": ("minidl", "torch", "keras")}


def _mlp_data():
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.normal(size=(MLP["batch"], MLP["features"])).astype("float32")
    y = rng.integers(0, MLP["classes"], size=MLP["batch"])
    return x, y


# --- minidl ---------------------------------------------------------------------------------------
def _time_ops(ops: dict, a, b, gy, repeats: int) -> dict:
    """Seconds per forward + backward of each op, for either library (same Tensor-like API)."""
    out = {}
    for name in OPS:
        op = ops[name]

        def loop():
            for _ in range(OP_LOOPS):
                op().backward(gy)
                a.grad = b.grad = None

        out[name] = [t / OP_LOOPS for t in time_steps(loop, repeats, warmup=1)[0]]
    return out


def minidl_ops(repeats: int) -> dict:
    import numpy as np

    import minidl as dl
    import minidl.functional as F

    rng = np.random.default_rng(0)
    a = dl.Tensor(rng.normal(size=OP_SHAPE).astype("float32"), requires_grad=True)
    b = dl.Tensor(rng.normal(size=OP_SHAPE).astype("float32"), requires_grad=True)
    gy = np.ones(OP_SHAPE, dtype="float32")
    ops = {"add": lambda: F.add(a, b), "mul": lambda: F.mul(a, b),
           "matmul": lambda: F.matmul(a, b), "tanh": lambda: F.tanh(a)}
    out = _time_ops(ops, a, b, gy, repeats)
    return {"version": dl.__version__, "detail": f"numpy {np.__version__}", "times": out}


def minidl_mlp(repeats: int) -> dict:
    import numpy as np

    import minidl as dl
    import minidl.functional as F
    from minidl.layers.core import Dense
    from minidl.optimizers import Adam

    dl.random.seed(0)
    layers = [Dense(n, activation="relu") for n in MLP["hidden"]] + [Dense(MLP["classes"])]
    x_np, labels = _mlp_data()
    x = dl.Tensor(x_np)
    optimizer = Adam(learning_rate=1e-3)

    def forward():
        h = x
        for layer in layers:
            h = layer(h, training=True)
        return F.mean(F.sparse_categorical_crossentropy(labels, h, from_logits=True))

    forward()  # build the weights
    params = [w for layer in layers for w in layer.trainable_weights]

    def step():
        loss = forward()
        loss.backward()
        optimizer.apply(params)

    times = time_steps(step, repeats, warmup=5)[0]
    parts = {"forward": [], "backward": [], "optimizer": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        loss = forward()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        optimizer.apply(params)
        t3 = time.perf_counter()
        parts["forward"].append(t1 - t0)
        parts["backward"].append(t2 - t1)
        parts["optimizer"].append(t3 - t2)
    split = {f"{k}_seconds": statistics.median(v) for k, v in parts.items()}
    return {"version": dl.__version__, "detail": f"numpy {np.__version__}", "times": times, **split}


# --- torch ----------------------------------------------------------------------------------------
def torch_ops(repeats: int) -> dict:
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    a = torch.tensor(rng.normal(size=OP_SHAPE).astype("float32"), requires_grad=True)
    b = torch.tensor(rng.normal(size=OP_SHAPE).astype("float32"), requires_grad=True)
    gy = torch.ones(OP_SHAPE)
    ops = {"add": lambda: a + b, "mul": lambda: a * b, "matmul": lambda: a @ b, "tanh": lambda: torch.tanh(a)}
    out = _time_ops(ops, a, b, gy, repeats)
    return {"version": torch.__version__, "detail": f"threads {torch.get_num_threads()}", "times": out}


def torch_mlp(repeats: int) -> dict:
    import torch

    torch.manual_seed(0)
    sizes = [MLP["features"], *MLP["hidden"]]
    modules = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        modules += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU()]
    net = torch.nn.Sequential(*modules, torch.nn.Linear(sizes[-1], MLP["classes"]))
    x_np, y_np = _mlp_data()
    x, y = torch.tensor(x_np), torch.tensor(y_np)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(net(x), y).backward()
        optimizer.step()

    return {"version": torch.__version__, "detail": f"threads {torch.get_num_threads()}",
            "times": time_steps(step, repeats, warmup=5)[0]}


# --- keras ----------------------------------------------------------------------------------------
def keras_mlp(repeats: int) -> dict:
    os.environ["KERAS_BACKEND"] = "torch"
    import keras

    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((MLP["features"],))]
                           + [keras.layers.Dense(n, activation="relu") for n in MLP["hidden"]]
                           + [keras.layers.Dense(MLP["classes"])])
    net.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _mlp_data()
    return {"version": keras.__version__, "detail": "torch backend, train_on_batch",
            "times": time_steps(lambda: net.train_on_batch(x, y), repeats, warmup=5)[0]}


WORKERS = {("op", "minidl"): minidl_ops, ("op", "torch"): torch_ops, ("mlp_step", "minidl"): minidl_mlp,
           ("mlp_step", "torch"): torch_mlp, ("mlp_step", "keras"): keras_mlp}


def worker(benchmark: str, library: str, repeats: int) -> None:
    out = WORKERS[benchmark, library](repeats)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["load_average"] = round(os.getloadavg()[0], 2)  # other work on the machine skews times
    out["environment"] = environment()
    print(json.dumps(out))


# --- driver ---------------------------------------------------------------------------------------
def _device() -> str:
    return f"cpu ({cpu_name()}, {os.cpu_count()} cores)"


def _records(benchmark: str, library: str, out: dict, device: str) -> list[dict]:
    base = {"library": library, "version": out.pop("version"), "detail": out.pop("detail"),
            "device": device, "dtype": "float32"}
    times = out.pop("times")
    peak = out.pop("peak_rss_mb")
    base["load_average"] = out.pop("load_average")
    base["environment"] = out.pop("environment", None)
    if benchmark == "op":
        records = []
        for name, op_times in times.items():
            median = statistics.median(op_times)
            records.append({"name": f"op/{name}", **base, "shapes": {"a": list(OP_SHAPE), "b": list(OP_SHAPE)},
                            "step": "forward+backward", "repeats": len(op_times),
                            "median_seconds": median, "median_us": median * 1e6,
                            "min_seconds": min(op_times), "peak_rss_mb": peak})
        return records
    return [{"name": "mlp_step", **base, "shapes": {"x": [MLP["batch"], MLP["features"]], "layers":
             [*MLP["hidden"], MLP["classes"]]}, "step": "forward+backward+adam", "repeats": len(times),
             "median_seconds": statistics.median(times), "min_seconds": min(times), **out, "peak_rss_mb": peak}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--benchmarks", nargs="+", default=list(BENCHMARKS), choices=list(BENCHMARKS))
    parser.add_argument("--libraries", nargs="+", default=["minidl", "torch", "keras"])
    parser.add_argument("--worker", nargs=2, metavar=("BENCHMARK", "LIBRARY"), help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=None,
                        help="set OMP/OPENBLAS/MKL_NUM_THREADS for every library (default: as the "
                             "environment has it); 1 keeps timings steadier on a busy machine")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.worker:
        sys.path.insert(0, str(ROOT))
        worker(args.worker[0], args.worker[1], args.repeats)
        return
    device = _device()
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    if args.threads:
        env.update({name: str(args.threads) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                          "MKL_NUM_THREADS")})
    records = []
    for benchmark in args.benchmarks:
        for library in BENCHMARKS[benchmark]:
            if library not in args.libraries:
                continue
            done = subprocess.run([sys.executable, __file__, "--worker", benchmark, library,
                                   "--repeats", str(args.repeats)],
                                  capture_output=True, text=True, env=env)
            if done.returncode != 0:
                records.append({"name": benchmark, "library": library, "error": done.stderr[-2000:]})
                print(f"{benchmark} {library}: failed\n{done.stderr[-2000:]}", file=sys.stderr)
                continue
            for record in _records(benchmark, library, json.loads(done.stdout.strip().splitlines()[-1]), device):
                record["threads"] = args.threads or "default"
                records.append(record)
                print(f"{record['name']:10s} {library:7s} median {record['median_seconds'] * 1e6:10.1f} us",
                      file=sys.stderr)
    save_records(args.output, records)


if __name__ == "__main__":
    main()
