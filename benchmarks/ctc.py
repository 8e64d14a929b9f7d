"""CTC loss forward + backward: minidl beside torch, each library in its own process.

The case of issue 8: a batch of 32 utterances of 200 frames, 11 classes (blank + 10 digits),
targets of 7 labels, reduction "mean". Each worker builds the same inputs from one seed,
makes log_probs a leaf that requires a gradient (in the layout its library takes: minidl
(batch, time, classes), torch (time, batch, classes)), warms up, then times ``repeats`` runs
of loss = ctc_loss(...); loss.backward(). NumPy's OpenBLAS threads spin after a call and slow
torch down in a shared process, hence one subprocess per library; the libraries take turns
over ``--rounds`` processes each (benchmarks/_timing.py's take_turns), and the record gives the
minimum and the median over all of them.

    .venv/bin/python benchmarks/ctc.py            # writes benchmarks/results/ctc.json
    .venv/bin/python benchmarks/ctc.py --repeats 50 --rounds 5 --dtype float64
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys

import numpy as np

from _timing import cpu_name, environment, save_records, take_turns, time_steps  # benchmarks/ is the script's folder, first on sys.path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results", "ctc.json")
BATCH, FRAMES, CLASSES, TARGET_LENGTH = 32, 200, 11, 7


def make_inputs(dtype: str):
    """The same log-probabilities and targets in every process (seeded)."""
    rng = np.random.default_rng(8)
    logits = rng.normal(size=(BATCH, FRAMES, CLASSES))
    log_probs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    targets = rng.integers(1, CLASSES, size=(BATCH, TARGET_LENGTH))
    lengths = np.full(BATCH, FRAMES), np.full(BATCH, TARGET_LENGTH)
    return log_probs.astype(dtype), targets, lengths


def minidl_step(dtype: str):
    sys.path.insert(0, ROOT)
    import minidl  # noqa: PLC0415
    from minidl.functional.ctc import ctc_loss  # noqa: PLC0415
    from minidl.tensor import Tensor  # noqa: PLC0415
    log_probs, targets, (input_lengths, target_lengths) = make_inputs(dtype)

    def step():
        x = Tensor(log_probs, requires_grad=True)
        ctc_loss(x, targets, input_lengths, target_lengths).backward()
        return x.grad
    return step, getattr(minidl, "__version__", "dev"), "numpy " + np.__version__


def torch_step(dtype: str):
    import torch  # noqa: PLC0415
    log_probs, targets, (input_lengths, target_lengths) = make_inputs(dtype)
    leaf = torch.tensor(log_probs.transpose(1, 0, 2).copy())
    targets, input_lengths, target_lengths = map(torch.tensor, (targets, input_lengths, target_lengths))

    def step():
        x = leaf.detach().requires_grad_(True)
        torch.nn.functional.ctc_loss(x, targets, input_lengths, target_lengths).backward()
        return x.grad
    return step, torch.__version__, f"threads {torch.get_num_threads()}"


def worker(library: str, dtype: str, repeats: int, warmup: int) -> dict:
    step, version, detail = {"minidl": minidl_step, "torch": torch_step}[library](dtype)
    seconds = time_steps(step, repeats, warmup)[0]
    return {"version": version, "detail": detail, "times": seconds,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "environment": environment()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per process")
    parser.add_argument("--rounds", type=int, default=3, help="processes per library, taking turns")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64", "both"])
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both libraries (OMP/OpenBLAS/MKL); default: each library's own. "
                             "On a loaded machine torch's OpenMP threads wait on each other; 1 is the fair figure")
    parser.add_argument("--worker", nargs=2, metavar=("LIBRARY", "DTYPE"), help=argparse.SUPPRESS)
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], args.repeats, args.warmup)))
        return

    records = []
    for dtype in (["float32", "float64"] if args.dtype == "both" else [args.dtype]):
        env = dict(os.environ)
        if args.threads:
            env.update({name: str(args.threads) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
        runs = take_turns(os.path.abspath(__file__), ["minidl", "torch"], dtype, args.rounds,
                          ["--repeats", str(args.repeats), "--warmup", str(args.warmup)], env)
        for library, out in runs.items():
            if "error" in out:
                print(f"{library} {dtype}: failed\n{out['error']}", file=sys.stderr)
                records.append({"name": "ctc_loss_forward_backward", "library": library, "dtype": dtype,
                                "error": out["error"]})
                continue
            seconds = out.pop("times")
            records.append({
                "name": "ctc_loss_forward_backward", "library": library, "version": out.pop("version"),
                "detail": out.pop("detail"), "device": f"cpu ({cpu_name()}, "
                                                      f"{os.cpu_count()} cores)",
                "dtype": dtype, "reduction": "mean",
                "shapes": {"batch": BATCH, "frames": FRAMES, "classes": CLASSES, "target_length": TARGET_LENGTH},
                "repeats": len(seconds), "rounds": args.rounds, "threads": args.threads or "default",
                "median_seconds": float(np.median(seconds)),
                "min_seconds": float(np.min(seconds)), "load_average_1min": round(os.getloadavg()[0], 2), **out})
            print(f"{library:7s} {dtype}: min {records[-1]['min_seconds'] * 1e3:8.2f} ms  "
                  f"median {records[-1]['median_seconds'] * 1e3:8.2f} ms", file=sys.stderr)
        times = {r["library"]: r for r in records if r["dtype"] == dtype and "error" not in r}
        if len(times) == 2:
            print(f"minidl / torch ({dtype}): min {times['minidl']['min_seconds'] / times['torch']['min_seconds']:.2f}x"
                  f"  (median {times['minidl']['median_seconds'] / times['torch']['median_seconds']:.2f}x)",
                  file=sys.stderr)
    save_records(args.output, records)


if __name__ == "__main__":
    main()
