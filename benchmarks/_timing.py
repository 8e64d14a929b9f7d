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
    fixed batch, as a closure for ``time_steps``; the layers are built by a first forward."""
    import minidl as dl  # noqa: PLC0415 (only the minidl worker process imports minidl)
    import minidl.functional as F  # noqa: PLC0415
    from minidl.optimizers import Adam  # noqa: PLC0415

    x = dl.Tensor(dl.backend.to_device(x_np, device))
    labels = dl.backend.to_device(y_np, device)
    optimizer = Adam(1e-3)

    def forward():
        h = x
        for layer in layers:
            h = layer(h, training=True)
        return F.mean(F.sparse_categorical_crossentropy(labels, h, from_logits=True))

    forward()
    params = [w for layer in layers for w in layer.trainable_weights]

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
    gathered over all rounds and the "peak_rss_bytes" of the largest; or {"error": stderr}."""
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
            if "peak_rss_bytes" in out:
                out["peak_rss_bytes"] = max(previous.get("peak_rss_bytes", 0), out["peak_rss_bytes"])
            runs[library] = out
    return runs
