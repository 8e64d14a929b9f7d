"""How every benchmark times a step: warm-up calls first, then wall-clock and CPU seconds of each
repeat (CPU seconds count every thread of the process, which shows BLAS threads spinning)."""
from __future__ import annotations

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
