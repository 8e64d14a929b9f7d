"""Where the milliseconds of a minidl training step go: the CNN of benchmarks/conv.py and the
LSTM of benchmarks/recurrent.py, one process each, BLAS threads as the environment has them.

    python benchmarks/profile_steps.py [--repeats 20]

For each step: the whole step (forward, loss, backward, Adam) timed as the benchmarks time it;
every op's forward and backward from ``dl.trace()`` (the minimum over repeats of each row);
Adam alone; and the parts of the big ops re-run on their own shapes: for a convolution im2col,
the forward GEMM and the weight-gradient GEMM (both with the bias's column of ones) and the input
gradient (kh·kw GEMMs and adds); for the LSTM the T step GEMMs of forward, Θᵀ·[h; x; 1], the T
∂h GEMMs of backward, the side-by-side copies of ∂Z and HX and the one ∂Θ GEMM, the rest of the
LSTM op being its gate arithmetic. "python/graph overhead" is the
step minus everything timed inside it. With ``--threads 1`` every time is the thread's CPU time,
which other load on a shared machine does not stretch (it still costs cache). Results: benchmarks/results/profile_steps.json.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

from _timing import environment, minidl_train_step, save_records  # benchmarks/ is the script's folder, first on sys.path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "profile_steps.json"


def best(fn, repeats: int) -> float:
    """Minimum wall seconds of ``fn()`` over ``repeats`` calls, after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def profile(model: str, repeats: int) -> dict:
    if os.environ.get("OPENBLAS_NUM_THREADS") == "1":
        # One thread does all the work, so its CPU time is the step's cost without the time other
        # processes held the core; every clock here (and dl.trace's) reads it instead of the wall.
        time.perf_counter = time.thread_time
    sys.path.insert(0, str(ROOT))
    import numpy as np

    import minidl as dl
    from minidl.functional import conv as conv_module, conv_pool as conv_pool_module
    from minidl.layers.conv import Conv2D
    from minidl.layers.core import Dense, Flatten
    from minidl.layers.pooling import MaxPooling2D
    from minidl.layers.recurrent import LSTM
    from minidl.optimizers import Adam

    dl.random.seed(0)
    rng = np.random.default_rng(0)
    if model == "cnn2d":
        layers = [Conv2D(32, 3, activation="relu"), MaxPooling2D(2), Conv2D(64, 3, activation="relu"),
                  MaxPooling2D(2), Flatten(), Dense(10)]
        x = rng.normal(size=(32, 40, 40, 1)).astype("float32")
    else:
        layers = [LSTM(128), Dense(10)]
        x = rng.normal(size=(32, 50, 13)).astype("float32")
    y = rng.integers(0, 10, size=32)
    step = minidl_train_step(layers, x, y)
    step_seconds = best(step, repeats)

    # per op, the minimum over repeats of each trace row
    rows: list[dict] = []
    for _ in range(repeats):
        with dl.trace() as trace:
            step()
        for i, record in enumerate(trace.records):
            if i == len(rows):
                rows.append({"op": record["op"], "shapes": f"{record['inputs']} -> {record['outputs']}",
                             "forward_ms": record["forward_ms"], "backward_ms": record["backward_ms"]})
            for key in ("forward_ms", "backward_ms"):
                if record[key] is not None:
                    rows[i][key] = min(rows[i][key] if rows[i][key] is not None else 1e9, record[key])
    params = [w for layer in layers for w in layer.trainable_weights]
    adam = Adam(1e-3)
    grads = [(np.full_like(w.data, 1e-3), w) for w in params]
    adam_seconds = best(lambda: adam.apply_gradients(grads), repeats)

    parts: dict[str, float] = {}
    if model == "cnn2d":
        h = dl.Tensor(x)
        for layer in layers:
            if isinstance(layer, Conv2D):
                xin = h.data
                kernel = layer.kernel.data
                kh, kw, channels, filters = kernel.shape
                name = f"conv {xin.shape[1]}x{xin.shape[2]}x{channels}->{filters}"
                col = conv_module.im2col(xin, (kh, kw))
                # fused with the 2x2 pool after it (minidl.functional.conv_pool), the convolution
                # computes only the outputs a pool window covers: its col and GEMMs have those rows
                pooled = (col.shape[1] // 2, col.shape[2] // 2)
                positions = 4 * col.shape[0] * pooled[0] * pooled[1]
                fused_col = np.empty((positions, kh * kw * channels), np.float32)

                def pooled_im2col():
                    conv_pool_module.pooled_im2col(xin, (kh, kw), (1, 1), (1, 1), (2, 2), pooled, fused_col)
                pooled_im2col()
                col2 = np.concatenate([fused_col, np.ones((positions, 1), np.float32)], axis=1)
                w2 = np.concatenate([kernel.reshape(-1, filters), np.zeros((1, filters), np.float32)])
                g2 = np.ones((col2.shape[0], filters), dtype=np.float32)
                parts[f"{name}: im2col, rows by pool offset"] = best(pooled_im2col, repeats)
                parts[f"{name}: forward GEMM {col2.shape}x{w2.shape}"] = best(lambda: col2 @ w2, repeats)
                parts[f"{name}: weight-gradient GEMM"] = best(lambda: conv_module.weights_product(col2, g2), repeats)
                covered = (2 * pooled[0], 2 * pooled[1])   # the fused op's input gradient: these outputs only
                g2 = np.ones((col.shape[0] * covered[0] * covered[1], filters), dtype=np.float32)
                f = conv_module.Conv2DFunction((1, 1), (1, 1), ((0, 0), (0, 0)))
                f.col_shape, f.W2, f.padded_shape = col.shape, w2[:-1], xin.shape
                f.x_shape, f.pads = xin.shape, ((0, 0), (0, 0))
                f.strides, f.dilation_rate = (1, 1), (1, 1)
                parts[f"{name}: input gradient (9 GEMMs + adds)"] = (
                    best(lambda: f._input_grad(g2, covered), repeats) if layer is not layers[0] else 0.0)
            h = layer(h, training=True)
    else:
        from minidl.functional.recurrent._common import side_by_side
        theta_t = rng.normal(size=(512, 142)).astype(np.float32)  # Θᵀ: 4·128 gates, 128 + 13 + 1 rows
        hx = rng.normal(size=(51, 142, 32)).astype(np.float32)  # HX: [h_{t-1}; x_t; 1] by batch
        z = np.empty((512, 32), dtype=np.float32)
        u_rows, dh = theta_t.T[:128].copy(), np.empty((128, 32), np.float32)
        dz = rng.normal(size=(512, 32)).astype(np.float32)
        grad_z = rng.normal(size=(50, 512, 32)).astype(np.float32)
        grad_z_side_by_side = side_by_side(np, grad_z)
        hx_side_by_side = side_by_side(np, hx[:50])
        parts["LSTM: 50 step GEMMs Θᵀ·[h; x; 1] (512x142 @ 142x32)"] = best(
            lambda: [np.dot(theta_t, hx[t], out=z) for t in range(50)], repeats)
        parts["LSTM: 50 ∂h GEMMs U·∂z (128x512 @ 512x32)"] = best(
            lambda: [np.dot(u_rows, dz, out=dh) for _ in range(50)], repeats)
        parts["LSTM: side-by-side copies of ∂Z and HX"] = best(
            lambda: (side_by_side(np, grad_z), side_by_side(np, hx[:50])), repeats)
        parts["LSTM: ∂Θ GEMM (142x1600 @ 1600x512)"] = best(
            lambda: hx_side_by_side @ grad_z_side_by_side.T, repeats)
    traced_ms = sum((r["forward_ms"] or 0) + (r["backward_ms"] or 0) for r in rows)
    return {"name": f"profile/{model}", "clock": "thread CPU time" if time.perf_counter is time.thread_time else "wall",
            "load_average_1min": round(os.getloadavg()[0], 2), "step_seconds": step_seconds, "ops": rows,
            "adam_seconds": adam_seconds, "parts_seconds": parts,
            "python_graph_overhead_seconds": step_seconds - traced_ms / 1e3 - adam_seconds,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "environment": environment()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS/OpenMP threads (default: the environment's); 1 gives times that other "
                             "load on a shared machine distorts least")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(profile(args.worker, args.repeats)))
        return
    import subprocess
    records = []
    env = dict(os.environ)
    if args.threads:
        env.update({name: str(args.threads) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    for model in ("cnn2d", "lstm"):
        done = subprocess.run([sys.executable, __file__, "--worker", model, "--repeats", str(args.repeats)],
                              capture_output=True, text=True, env=env)
        if done.returncode != 0:
            records.append({"name": f"profile/{model}", "error": done.stderr[-2000:]})
            print(done.stderr[-2000:], file=sys.stderr)
            continue
        record = json.loads(done.stdout.strip().splitlines()[-1])
        records.append(record)
        print(f"{model}: step {record['step_seconds'] * 1e3:.2f} ms, Adam {record['adam_seconds'] * 1e3:.2f} ms, "
              f"overhead {record['python_graph_overhead_seconds'] * 1e3:.2f} ms", file=sys.stderr)
        for row in record["ops"]:
            print(f"   {row['op']:28s} fwd {row['forward_ms'] or 0:7.3f}  bwd {row['backward_ms'] or 0:7.3f} ms  {row['shapes']}",
                  file=sys.stderr)
        for name, seconds in record["parts_seconds"].items():
            print(f"   {name:60s} {seconds * 1e3:7.3f} ms", file=sys.stderr)
    save_records(args.output, records)


if __name__ == "__main__":
    main()
