"""What OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE cost NumPy, and so minidl, on this machine.

    python benchmarks/blas_kernel.py [--rounds 3] [--repeats 20]

OpenBLAS picks its kernels for the CPU when NumPy is imported, unless OPENBLAS_CORETYPE names a
core; some of this project's machines set it (to Haswell, on CPUs with AVX-512) and
OPENBLAS_L2_SIZE. This script runs the same work in processes that differ only in those two
variables: the environment as it is, without OPENBLAS_CORETYPE, and without both (settings that
come out the same are run once). Per process: three float32 GEMMs of minidl's steps, timed alone
(the LSTM(128) step product Θᵀ·[h; x; 1], (512, 142)x(142, 32); the LSTM's weight gradient
over 50 steps, (142, 1600)x(1600, 512); the CNN's second convolution, (8192, 289)x(289, 64)),
then minidl's CNN and LSTM training steps of benchmarks/conv.py and benchmarks/recurrent.py
(their workers, run as they are). Settings take turns, round by round. Results:
benchmarks/results/blas_kernel.json, one record per setting.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _timing import cpu_name, environment, save_records, time_steps  # benchmarks/ is the script's folder, first on sys.path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "blas_kernel.json"
VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# name -> (a shape, b shape, b given as the transpose of a C-ordered array), float32 a @ b, as
# minidl's ops hand them to OpenBLAS (the LSTM's ∂Θ is HX side by side times ∂Zᵀ)
GEMMS = {"lstm_step_product": ((512, 142), (142, 32), False),
         "lstm_weight_gradient": ((142, 1600), (1600, 512), True),
         "cnn_conv2_forward": ((8192, 289), (289, 64), False)}
STEPS = {"cnn_step": ("conv.py", "cnn2d"), "lstm_step": ("recurrent.py", "lstm")}


def settings(environ: dict) -> dict[str, dict]:
    """label -> environment: as it is, without OPENBLAS_CORETYPE, without both; duplicates dropped."""
    candidates = {"as set": dict(environ),
                  "OPENBLAS_CORETYPE unset": {k: v for k, v in environ.items() if k != "OPENBLAS_CORETYPE"},
                  "both unset": {k: v for k, v in environ.items() if k not in VARIABLES}}
    out, seen = {}, set()
    for label, env in candidates.items():
        key = tuple(env.get(k) or None for k in VARIABLES)  # empty is unset, to OpenBLAS too
        if key not in seen:
            seen.add(key)
            out[label] = env
    return out


def gemm_worker(repeats: int) -> dict:
    """Seconds per call of each GEMM of GEMMS, ``repeats`` times, each a loop of about 2·10⁹
    multiply-adds (10-25 ms here; the loop's own overhead is under 1 µs a call)."""
    import numpy as np  # noqa: PLC0415
    rng = np.random.default_rng(0)
    out = {}
    for name, (a_shape, b_shape, b_transposed) in GEMMS.items():
        a = rng.standard_normal(a_shape, dtype=np.float32)
        b = (rng.standard_normal(b_shape[::-1], dtype=np.float32).T if b_transposed
             else rng.standard_normal(b_shape, dtype=np.float32))
        result = np.empty((a_shape[0], b_shape[1]), dtype=np.float32)
        calls = max(1, int(2e9 // (a_shape[0] * a_shape[1] * b_shape[1])))

        def loop(a=a, b=b, result=result, calls=calls):
            for _ in range(calls):
                np.matmul(a, b, out=result)
        times, _ = time_steps(loop, repeats)
        out[name] = [t / calls for t in times]
    return out


def run(command: list[str], env: dict) -> dict:
    """Run a worker; its last line of output, parsed as JSON. Exits with the worker's stderr if it
    fails or prints no JSON."""
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise SystemExit(f"blas_kernel.py: {' '.join(command)} failed (exit {done.returncode}, "
                         f"{len(lines)} lines of output):\n{done.stderr[-2000:]}")
    try:
        return json.loads(lines[-1])
    except json.JSONDecodeError as error:
        raise SystemExit(f"blas_kernel.py: {' '.join(command)} printed no JSON last ({error}): {lines[-1][:200]!r}")


def kernel(out: dict) -> str | None:
    """The OpenBLAS kernel a worker's ``environment`` names, or None."""
    blas = out.get("environment", {}).get("blas")
    return blas[0].get("architecture") if isinstance(blas, list) and blas else None


def main() -> None:
    """Every setting's workers in turn, ``--rounds`` times; one record per setting in --output."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="processes per setting and measurement, taking turns")
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats per process")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps({"times": gemm_worker(args.repeats), "environment": environment()}))
        return
    configs = settings({**os.environ, "KERAS_BACKEND": "torch"})
    times: dict[str, dict[str, list]] = {label: {} for label in configs}
    kernels: dict[str, set] = {label: set() for label in configs}
    loads: dict[str, list] = {label: [] for label in configs}
    last_env: dict[str, dict] = {}
    for _ in range(args.rounds):
        for label, env in configs.items():
            commands = {"gemms": [sys.executable, __file__, "--worker", "--repeats", str(args.repeats)]}
            commands.update({name: [sys.executable, str(ROOT / "benchmarks" / script), "--worker", "minidl", model,
                                    "--repeats", str(args.repeats)] for name, (script, model) in STEPS.items()})
            for name, command in commands.items():
                out = run(command, env)
                loads[label].append(round(os.getloadavg()[0], 2))  # as each process ends
                kernels[label].add(kernel(out))
                if name == "gemms":
                    last_env[label] = out["environment"]
                    for gemm, values in out["times"].items():
                        times[label].setdefault(gemm, []).extend(values)
                else:
                    times[label].setdefault(name, []).extend(out["times"])
    records = []
    for label in configs:
        if len(kernels[label]) != 1:  # the same variables gave another kernel in some process
            raise SystemExit(f"blas_kernel.py: setting {label!r} ran OpenBLAS kernels {sorted(map(str, kernels[label]))}")
        record = {"name": "blas_kernel", "setting": label, "env": {k: configs[label].get(k) for k in VARIABLES},
                  "kernel": next(iter(kernels[label])), "cpu": cpu_name(), "cpus": os.cpu_count(),
                  "date": time.strftime("%Y-%m-%d %H:%M", time.localtime()), "rounds": args.rounds,
                  "environment": last_env[label], "load_averages": loads[label],
                  "results": {name: {"min_seconds": min(v), "median_seconds": statistics.median(v), "repeats": len(v)}
                              for name, v in times[label].items()}}
        records.append(record)
        for name, r in record["results"].items():
            print(f"{label:24s} {record['kernel'] or '?':10s} {name:22s} min {r['min_seconds'] * 1e3:8.3f} ms  "
                  f"median {r['median_seconds'] * 1e3:8.3f} ms", file=sys.stderr)
    save_records(args.output, records)


if __name__ == "__main__":
    main()
