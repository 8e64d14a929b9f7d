"""Per-file latency of a digit model in minidl and, exported, in ONNX Runtime: the 300 official test files.

    python benchmarks/export.py --model runs/crnn/model.npz [--rounds 3]

The model is exported once (``dl.export.onnx``); the features of the 300 files of FSDD's official
test split are computed once (minidl.apps.digits, from the feature cache) and handed to both,
so what is timed is the network alone: one file at a time, batch 1, as a recogniser answers a
request. Each library runs in its own process (``--worker``; NumPy's and ONNX Runtime's thread
pools never share one), the two taking turns for ``--rounds`` rounds (``_timing.take_turns``),
so a burst of load from other processes falls on both. Each worker times every file once after
a warm-up pass and reports its predictions, so the record also says whether the two agree.

Results: benchmarks/results/export.json, one record per library: min and median seconds per
file over all files and rounds, the test accuracy, and the agreement with minidl.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _timing import cpu_name, save_records, take_turns  # benchmarks/ is the script's folder, first on sys.path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "export.json"
LIBRARIES = ("minidl", "onnxruntime")


def prepare(model_path: Path, folder: Path) -> dict:
    """Write the ONNX file and the test features (.npz, one array per file) into ``folder``."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    import audio
    import minidl as dl
    from minidl.apps import digits

    recogniser = digits.Recogniser(model_path)
    dl.export.onnx(recogniser.model, folder / "model.onnx")
    _, test = audio.fsdd.FSDD().split("official")
    features = digits.dataset_features(audio.fsdd.FSDD(), test, recogniser.features, progress=False)
    inputs = digits.model_inputs(recogniser.kind, features, recogniser.frames)
    np.savez(folder / "features.npz", **{f"file_{i:03d}": np.asarray(x, dtype=np.float32)
                                         for i, x in enumerate(inputs)})
    np.save(folder / "labels.npy", np.array([r.digit for r in test]))
    return {"kind": recogniser.kind, "files": len(test)}


def load_inputs(folder: Path) -> list:
    import numpy as np
    with np.load(folder / "features.npz", allow_pickle=False) as archive:
        return [archive[name][None] for name in sorted(archive.files)]


def run_minidl(model_path: Path, folder: Path) -> tuple[str, object]:
    sys.path.insert(0, str(ROOT))
    import minidl as dl
    from minidl.apps import digits
    model = digits.Recogniser(model_path).model
    return dl.__version__, model.predict


def run_onnxruntime(model_path: Path, folder: Path) -> tuple[str, object]:
    import onnxruntime as ort
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    return ort.__version__, lambda x: session.run(None, {"input": x})[0]


WORKERS = {"minidl": run_minidl, "onnxruntime": run_onnxruntime}


def worker(library: str, model_path: Path, folder: Path) -> None:
    version, predict = WORKERS[library](model_path, folder)
    inputs = load_inputs(folder)
    for x in inputs:   # warm-up: first calls allocate, ONNX Runtime plans its memory
        predict(x)
    times, predictions = [], []
    for x in inputs:
        start = time.perf_counter()
        probabilities = predict(x)
        times.append(time.perf_counter() - start)
        predictions.append(int(probabilities.argmax()))
    print(json.dumps({"version": version, "times": times, "predictions": predictions,
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "runs" / "demo" / "model.npz",
                        help="a digit model minidl-digits train wrote")
    parser.add_argument("--rounds", type=int, default=3, help="processes per library, taking turns")
    parser.add_argument("--libraries", nargs="+", default=list(LIBRARIES))
    parser.add_argument("--worker", nargs=2, metavar=("LIBRARY", "FOLDER"), help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.model, Path(args.worker[1]))
        return
    import numpy as np
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        setup = prepare(args.model, folder)
        labels = np.load(folder / "labels.npy")
        # take_turns passes its "model" argument after the library: here, the scratch folder
        runs = take_turns(__file__, args.libraries, str(folder), args.rounds, ["--model", str(args.model)],
                          dict(os.environ))
    reference = runs.get("minidl", {}).get("predictions")
    records = []
    for library, out in runs.items():
        name = f"export/digits_{setup['kind']}"
        if "error" in out:
            records.append({"name": name, "library": library, "error": out["error"]})
            continue
        times, predictions = out.pop("times"), np.array(out.pop("predictions"))
        record = {"name": name, "library": library, "version": out.pop("version"),
                  "device": f"cpu ({cpu_name()}, {os.cpu_count()} cores)",
                  "dtype": "float32", "step": "one file's features -> probabilities, batch 1",
                  "files": setup["files"], "repeats": len(times), "rounds": args.rounds,
                  "median_seconds": statistics.median(times), "min_seconds": min(times),
                  "test_accuracy": float(np.mean(predictions == labels)),
                  "same_prediction_as_minidl": (None if reference is None else
                                                float(np.mean(predictions == np.array(reference)))),
                  "model_file": str(args.model), "load_average_1min": os.getloadavg()[0], **out}
        records.append(record)
        print(f"{library:12s} median {record['median_seconds'] * 1e3:7.3f} ms  min {record['min_seconds'] * 1e3:7.3f} ms"
              f"  accuracy {100 * record['test_accuracy']:.2f}%", file=sys.stderr)
    save_records(args.output, records)


if __name__ == "__main__":
    main()
