"""MFCC speed over the FSDD recordings: audio.features.mfcc beside librosa and
python_speech_features, each timed in its own subprocess on the same machine.

    MINIDL_DATA=/path/to/data python benchmarks/mfcc.py [--files 3000] [--repeats 3]

Writes benchmarks/results/mfcc.json: one record per run with name, library and version,
device, dtype, shapes, repeats, median seconds, files per second, peak memory. Also checks
that both presets match their libraries on every file (to 1e-4 of the feature range), and
times StreamingMFCC per 10 ms chunk. Runs:

    decode                 soundfile decoding alone (audio.load)
    audio_htk_per_file     audio.features.mfcc(preset="htk"), one call per file
    audio_htk_batched      the same on length-sorted batches of 64, zero-padded
    audio_librosa_per_file audio.features.mfcc(preset="librosa"), one call per file
    audio_librosa_batched  the same, batched
    python_speech_features python_speech_features.mfcc(signal, samplerate=8000)
    librosa                librosa.feature.mfcc(y=y, sr=8000, n_mfcc=13)
    stream_10ms            StreamingMFCC(8000, "htk").push of 80-sample chunks

Each feature run is timed with decoding excluded (signals loaded beforehand) and included.
Every worker runs with one BLAS/OpenMP thread (OPENBLAS_NUM_THREADS=1 etc., the same for all
libraries): on a small shared machine OpenBLAS threads oversubscribe the cores and a 222 x 257
by 257 x 26 product took 16 ms instead of 0.08 ms, which measured the neighbours, not the code.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "mfcc.json"
RUNS = ("decode", "audio_htk_per_file", "audio_htk_batched", "audio_librosa_per_file",
        "audio_librosa_batched", "python_speech_features", "librosa", "stream_10ms", "verify")
BATCH = 64
ONE_THREAD = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                     "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}


def _files(count: int) -> list[Path]:
    data = os.environ.get("MINIDL_DATA")
    if not data:
        sys.exit("benchmarks/mfcc.py: set MINIDL_DATA to the folder that holds fsdd/recordings")
    files = sorted((Path(data) / "fsdd" / "recordings").glob("*.wav"))
    if not files:
        sys.exit(f"benchmarks/mfcc.py: no WAVs in {Path(data) / 'fsdd' / 'recordings'}")
    return files[:count]


def _batches(signals: list[np.ndarray]) -> list[tuple[np.ndarray, list[int]]]:
    """Length-sorted batches of BATCH signals, zero-padded to the longest in each."""
    order = sorted(range(len(signals)), key=lambda i: len(signals[i]))
    out = []
    for start in range(0, len(order), BATCH):
        members = order[start:start + BATCH]
        width = max(len(signals[i]) for i in members)
        batch = np.zeros((len(members), width), np.float32)
        for row, i in enumerate(members):
            batch[row, :len(signals[i])] = signals[i]
        out.append((batch, members))
    return out


def _feature_function(name: str):
    """(library, version, per-file function or None, batched function or None)."""
    if name.startswith("audio_"):
        from audio.features import mfcc
        preset = "htk" if "_htk_" in name else "librosa"

        def one(y):
            return mfcc(y, 8000, preset=preset)

        return "audio (minidl)", "0.1.0", one, (lambda batch: mfcc(batch, 8000, preset=preset))
    if name == "python_speech_features":
        import python_speech_features as psf
        return "python_speech_features", "0.6", lambda y: psf.mfcc(y, samplerate=8000), None
    if name == "librosa":
        import librosa
        return ("librosa", librosa.__version__,
                lambda y: librosa.feature.mfcc(y=y, sr=8000, n_mfcc=13), None)
    raise ValueError(name)


def _worker(name: str, count: int, repeats: int) -> dict:
    """One run, in this (fresh) process; returns its JSON record."""
    warnings.simplefilter("ignore")  # librosa warns that n_fft=2048 exceeds short takes
    import audio
    files = _files(count)
    record = {"name": name, "files": len(files), "repeats": repeats, "device": "cpu",
              "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
              "dtype": "float32", "python": platform.python_version(),
              "numpy": np.__version__,
              "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")}
    signals = [audio.load(path)[0] for path in files]
    record["samples_median"] = int(statistics.median(len(s) for s in signals))

    if name == "decode":
        times = [_time(lambda: [audio.load(path) for path in files]) for _ in range(repeats)]
        record.update(library="soundfile", version=__import__("soundfile").__version__,
                      median_seconds=statistics.median(times))
    elif name == "verify":
        record.update(_verify(signals))
    elif name == "stream_10ms":
        record.update(_stream(signals[:300], repeats))
    else:
        library, version, one, batched = _feature_function(name)
        record.update(library=library, version=version)
        if name.endswith("_batched"):
            def excluded():
                for batch, _ in _batches(signals):
                    batched(batch)

            def included():
                loaded = [audio.load(path)[0] for path in files]
                for batch, _ in _batches(loaded):
                    batched(batch)
            record["batch"] = BATCH
        else:
            def excluded():
                for y in signals:
                    one(y)

            def included():
                for path in files:
                    one(audio.load(path)[0])
        excluded()  # warm caches (filterbanks, FFT plans) before timing
        times = [_time(excluded) for _ in range(repeats)]
        record["median_seconds"] = statistics.median(times)
        record["min_seconds"] = min(times)  # the least disturbed pass on a shared machine
        record["median_seconds_with_decode"] = statistics.median(
            _time(included) for _ in range(repeats))
        record["files_per_second_with_decode"] = len(files) / record["median_seconds_with_decode"]
    if "median_seconds" in record and name != "stream_10ms":
        record["files_per_second"] = len(files) / record["median_seconds"]
    record["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return record


def _time(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _verify(signals: list[np.ndarray]) -> dict:
    """Worst |ours - theirs| / range(theirs) over every file, per preset."""
    import librosa
    import python_speech_features as psf
    from audio.features import mfcc
    worst = {"librosa": 0.0, "htk": 0.0}
    failing = {"librosa": 0, "htk": 0}
    for y in signals:
        for preset, theirs in (("librosa", librosa.feature.mfcc(y=y, sr=8000, n_mfcc=13).T),
                               ("htk", psf.mfcc(y, samplerate=8000))):
            ours = mfcc(y, 8000, preset=preset)
            error = float(np.max(np.abs(ours - theirs)) / np.ptp(theirs))
            worst[preset] = max(worst[preset], error)
            failing[preset] += error > 1e-4
    return {"library": "librosa + python_speech_features", "version": librosa.__version__,
            "worst_error_fraction_of_range": worst, "files_over_1e-4": failing}


def _stream(signals: list[np.ndarray], repeats: int) -> dict:
    """Seconds per push of a 10 ms (80-sample) chunk, and per flush."""
    from audio.stream import StreamingMFCC
    stream = StreamingMFCC(8000, "htk")
    pushes = []
    for _ in range(repeats):
        for y in signals:
            for start in range(0, len(y), 80):
                begin = time.perf_counter()
                stream.push(y[start:start + 80])
                pushes.append(time.perf_counter() - begin)
            stream.flush()
    pushes.sort()
    return {"library": "audio (minidl)", "version": "0.1.0", "chunk_samples": 80,
            "pushes": len(pushes), "median_seconds": pushes[len(pushes) // 2],
            "p99_seconds": pushes[int(0.99 * len(pushes))],
            "real_time_factor": pushes[len(pushes) // 2] / 0.010}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=3000, help="first N FSDD files by name")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", nargs="*", default=list(RUNS), choices=RUNS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", choices=RUNS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, args.files, args.repeats)))
        return
    _files(args.files)  # fail early without data
    records = []
    for name in args.runs:
        command = [sys.executable, __file__, "--worker", name, "--files", str(args.files),
                   "--repeats", str(args.repeats)]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                              env=dict(os.environ, PYTHONPATH=str(ROOT), **ONE_THREAD))
        if done.returncode:
            sys.exit(f"benchmarks/mfcc.py: run {name} failed:\n{done.stderr}")
        record = json.loads(done.stdout.strip().splitlines()[-1])
        records.append(record)
        shown = {k: v for k, v in record.items() if k in (
            "files_per_second", "files_per_second_with_decode", "median_seconds",
            "p99_seconds", "worst_error_fraction_of_range", "files_over_1e-4")}
        print(f"{name:24s} {json.dumps(shown)}")
    by_name = {r["name"]: r for r in records}
    summary = {}
    if "python_speech_features" in by_name:
        base = by_name["python_speech_features"]["files_per_second"]
        summary = {f"{r['name']}_vs_python_speech_features": r["files_per_second"] / base
                   for r in records if r["name"].startswith("audio_")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "mfcc", "records": records,
                                    "speedups": summary}, indent=2) + "\n")
    for key, value in summary.items():
        print(f"{key}: {value:.2f}x")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
