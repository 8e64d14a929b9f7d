"""How every benchmark times a step: warm-up calls first, then wall-clock and CPU seconds of each
repeat (CPU seconds count every thread of the process, which shows BLAS threads spinning)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Callable


def time_steps(step: Callable[[], object], repeats: int, warmup: int = 3) -> tuple[list[float], list[float]]:
    """Run ``step`` ``warmup`` times untimed, then ``repeats`` times; (wall seconds, CPU seconds)."""
    for _ in range(warmup):
        step()
    wall, cpu = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    return wall, cpu


def minidl_train_step(layers: list, x_np, y_np, device: str = "cpu") -> Callable[[], None]:
    """One minidl training step (forward, sparse cross-entropy from logits, backward, Adam) on a
    fixed batch, as a closure for ``time_steps``. The layers run as a ``dl.Sequential``, the way a
    user's model runs them (so its graph's fused pairs, such as Conv2D -> MaxPooling2D, count), and
    are built by a first forward."""
    import minidl as dl  # noqa: PLC0415 (only the minidl worker process imports minidl)
    import minidl.functional as F  # noqa: PLC0415
    from minidl.optimizers import Adam  # noqa: PLC0415

    x = dl.Tensor(dl.backend.to_device(x_np, device))
    labels = dl.backend.to_device(y_np, device)
    optimizer = Adam(1e-3)
    model = dl.Sequential(layers)

    def forward():
        return F.mean(F.sparse_categorical_crossentropy(labels, model(x, training=True), from_logits=True))

    forward()
    params = model.trainable_weights

    def step():
        loss = forward()
        loss.backward()
        optimizer.apply(params)
        if device == "gpu":
            import cupy  # noqa: PLC0415
            cupy.cuda.Stream.null.synchronize()
    return step


def take_turns(script: str, libraries: list[str], model: str, rounds: int, options: list[str],
               env: dict) -> dict[str, dict]:
    """Run ``script --worker LIBRARY MODEL *options`` once per library per round, the libraries
    taking turns, so that a burst of load from other processes on a shared machine falls on all
    of them alike. Returns library -> the worker's last JSON line, with "times" and "cpu_times"
    gathered over all rounds, the "peak_rss_bytes" of the largest and "load_averages", the 1-minute
    load average as each of its processes ended; or {"error": stderr}."""
    import os  # noqa: PLC0415

    runs: dict[str, dict] = {}
    for _ in range(rounds):
        for library in libraries:
            done = subprocess.run([sys.executable, script, "--worker", library, model, *options],
                                  capture_output=True, text=True, env=env)
            if done.returncode != 0:
                runs[library] = {"error": done.stderr[-2000:]}
                continue
            out = json.loads(done.stdout.strip().splitlines()[-1])
            previous = runs.get(library, {})
            for key in ("times", "cpu_times"):
                if key in out:
                    out[key] = previous.get(key, []) + out[key]
            out["load_averages"] = previous.get("load_averages", []) + [round(os.getloadavg()[0], 2)]
            if "peak_rss_bytes" in out:
                out["peak_rss_bytes"] = max(previous.get("peak_rss_bytes", 0), out["peak_rss_bytes"])
            runs[library] = out
    return runs


def save_records(path, records: list) -> None:
    """Write a benchmark's records as JSON to ``path``, through a temporary file renamed into
    place (minidl.atomic_write), so that a run cut off by quiet.sh's time limit leaves the
    previous file whole rather than a truncated one."""
    from pathlib import Path  # noqa: PLC0415
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:  # the repository's minidl, installed or not
        sys.path.insert(0, root)
    from minidl.atomic_write import atomic_write_text  # noqa: PLC0415
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(records, indent=2) + "\n")


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    import platform  # noqa: PLC0415
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def environment() -> dict:
    """What this process computes with: NumPy's BLAS (build, kernel, threads, via threadpoolctl),
    torch's thread pools if torch is imported, the OPENBLAS_* variables that change which kernel
    OpenBLAS picks or how it blocks (set on some of these machines, and they slow a current
    NumPy), and the load average when the worker ends (other work on the machine skews times)."""
    import os  # noqa: PLC0415

    out: dict = {"load_average": [round(x, 2) for x in os.getloadavg()], "cpu": cpu_name(),
                 "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
                 "env": {name: os.environ.get(name) for name in
                         ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                          "MKL_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")}}
    try:
        import threadpoolctl  # noqa: PLC0415
        out["blas"] = [{key: pool.get(key) for key in ("internal_api", "version", "architecture",
                                                        "threading_layer", "num_threads", "prefix")}
                       for pool in threadpoolctl.threadpool_info()]
    except ImportError:
        out["blas"] = "threadpoolctl not installed"
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info = torch.__config__.parallel_info()
        out["torch"] = {"num_threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
                        "backend": next((line.split(":", 1)[1].strip() for line in info.splitlines()
                                         if "parallel backend" in line), None),
                        "mkldnn": bool(torch.backends.mkldnn.is_available())}
    return out
