"""Is minidl's step as fast in a user's training loop as in the benchmark? The CNN step of
benchmarks/conv.py, timed two ways in their own processes, and the digits CNN's, each with and
without minidl's heap setting (minidl.workspace: glibc keeps freed memory at the top of the
heap and takes arrays up to 32 MiB from it):

    closure:   the benchmarks' own step (the layers as a Sequential called in a closure, functional loss, Adam)
    fit:       the same layers in a Sequential, one model.train_on_batch per step
    digits fit: minidl.apps.digits.build_cnn on the official split's input, (32, 79, 26), one
               model.train_on_batch per step (its arrays are larger: 200 MiB peak RSS)

    python benchmarks/steady.py [--repeats 30] [--rounds 3]

Per configuration: wall time per step (minimum and median over all rounds), thread CPU time,
minor page faults per step (getrusage; each is a fresh 4 KiB page the step touched after
glibc had given it back to the system), peak RSS. Results: benchmarks/results/steady.json.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

from _timing import environment, save_records, take_turns  # benchmarks/ is the script's folder, first on sys.path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "steady.json"
CONFIGS = {"closure": ("closure", None), "fit": ("fit", None),
           "closure, glibc default": ("closure", "0"), "fit, glibc default": ("fit", "0"),
           "digits fit": ("digits", None), "digits fit, glibc default": ("digits", "0")}
DIGITS_INPUT = (32, 79, 26)   # batch, the official split's coverage length, HTK MFCC + deltas


def run(mode: str, repeats: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import minidl as dl
    from conv import _data
    from minidl.layers.conv import Conv2D
    from minidl.layers.core import Dense, Flatten, Input
    from minidl.layers.pooling import MaxPooling2D

    dl.random.seed(0)
    layers = [Conv2D(32, 3, activation="relu"), MaxPooling2D(2), Conv2D(64, 3, activation="relu"),
              MaxPooling2D(2), Flatten(), Dense(10)]
    x, y = _data("cnn2d")
    if mode == "digits":
        import numpy as np
        from minidl.apps.digits import build_cnn
        model = build_cnn(DIGITS_INPUT[1], DIGITS_INPUT[2])
        model.compile(optimizer=dl.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        rng = np.random.default_rng(0)
        x = rng.normal(size=DIGITS_INPUT).astype("float32")
        y = rng.integers(0, 10, size=DIGITS_INPUT[0])
        step = lambda: model.train_on_batch(x, y)  # noqa: E731
    elif mode == "closure":
        from _timing import minidl_train_step
        step = minidl_train_step(layers, x, y)
    else:
        model = dl.Sequential([Input((40, 40, 1))] + layers)
        model.compile(optimizer=dl.optimizers.Adam(1e-3),
                      loss=dl.losses.SparseCategoricalCrossentropy(from_logits=True))
        step = lambda: model.train_on_batch(x, y)  # noqa: E731
    for _ in range(3):
        step()
    times, cpu, faults = [], [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start, cpu_start = time.perf_counter(), time.thread_time()
        step()
        times.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - cpu_start)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return {"times": times, "cpu_times": cpu, "faults": faults,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def record_name(config: str) -> str:
    return "steady/digits_cnn" if config.startswith("digits") else "steady/cnn2d"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", nargs=2, metavar=("CONFIG", "UNUSED"), help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.worker:
        mode, pad = CONFIGS[args.worker[0]]
        out = run(mode, args.repeats)
        out["environment"] = environment()
        out["environment"]["MINIDL_MALLOC_TOP_PAD"] = os.environ.get("MINIDL_MALLOC_TOP_PAD")
        print(json.dumps(out))
        return
    records = []
    # take_turns runs one script per "library"; the heap setting travels in the environment,
    # so each configuration is its own take_turns call within one round, rounds interleaved.
    runs: dict[str, dict] = {}
    for _ in range(args.rounds):
        for name, (mode, pad) in CONFIGS.items():
            env = dict(os.environ)
            env.pop("MINIDL_MALLOC_TOP_PAD", None)
            if pad is not None:
                env["MINIDL_MALLOC_TOP_PAD"] = pad
            got = take_turns(__file__, [name], "-", 1, ["--repeats", str(args.repeats)], env)[name]
            previous = runs.get(name, {})
            if "error" in got or "error" in previous:
                runs[name] = got if "error" in got else previous
                continue
            for key in ("times", "cpu_times", "faults", "load_averages"):
                got[key] = previous.get(key, []) + got[key]
            got["peak_rss_bytes"] = max(previous.get("peak_rss_bytes", 0), got["peak_rss_bytes"])
            runs[name] = got
    for name, out in runs.items():
        if "error" in out:
            records.append({"name": record_name(name), "config": name, "error": out["error"]})
            continue
        times, cpu, faults = out.pop("times"), out.pop("cpu_times"), out.pop("faults")
        record = {"name": record_name(name), "config": name, "step": "forward+backward+adam",
                  "repeats": len(times), "rounds": args.rounds,
                  "min_seconds": min(times), "median_seconds": statistics.median(times),
                  "min_thread_cpu_seconds": min(cpu), "median_page_faults": statistics.median(faults), **out}
        records.append(record)
        print(f"{name:24s} min {record['min_seconds'] * 1e3:6.2f} ms  median {record['median_seconds'] * 1e3:6.2f} ms  "
              f"faults/step {record['median_page_faults']:6.0f}  peak RSS {record['peak_rss_bytes'] / 2**20:5.1f} MiB",
              file=sys.stderr)
    save_records(args.output, records)


if __name__ == "__main__":
    main()
