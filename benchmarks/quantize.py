"""What int8 kernels cost a digit model: test accuracy and file size, float32 beside int8.

    python benchmarks/quantize.py --model runs/crnn/model.npz                          # official split
    python benchmarks/quantize.py --model runs/crnn_theo/model.npz --split speaker --held-out theo

The model is quantised with ``dl.quantize`` (per-channel int8 kernels), calibrated on 64 files of
the training split (the calibration only measures; weight-only quantisation needs no data),
saved with ``dl.quantize.save`` and loaded back, and both models classify the test split's
files. Results: benchmarks/results/quantize.json, one record per (model file, split), replacing
an earlier record of the same pair.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "quantize.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a digit model minidl-digits train wrote")
    parser.add_argument("--split", choices=("official", "speaker"), default="official")
    parser.add_argument("--held-out", default=None)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import numpy as np

    import audio
    import minidl as dl
    from minidl.apps import digits

    recogniser = digits.Recogniser(args.model)
    fsdd = audio.fsdd.FSDD()
    train, test = fsdd.split(args.split, held_out=args.held_out)
    labels = np.array([r.digit for r in test])
    test_x = digits.dataset_features(fsdd, test, recogniser.features, progress=False)
    calibration = digits.dataset_features(fsdd, train[:64], recogniser.features, progress=False)
    calibration_x = dl.data.pad_sequences(calibration, dtype="float32", padding="post") \
        if recogniser.kind != "cnn" else digits.fixed_length(calibration, recogniser.frames)
    small = dl.quantize(recogniser.model, calibration_data=calibration_x)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "model_int8.npz"
        dl.quantize.save(small, path, metadata=dl.saving.read_metadata(args.model))
        int8_bytes = path.stat().st_size
        loaded = dl.quantize.load(path)
    float_probabilities = recogniser.probabilities(test_x)
    recogniser.model = loaded
    int8_probabilities = recogniser.probabilities(test_x)
    record = {"name": f"quantize/digits_{recogniser.kind}", "model_file": str(args.model), "split": args.split,
              "held_out": args.held_out, "files": len(test),
              "float32_accuracy": float(np.mean(float_probabilities.argmax(axis=1) == labels)),
              "int8_accuracy": float(np.mean(int8_probabilities.argmax(axis=1) == labels)),
              "same_prediction": float(np.mean(float_probabilities.argmax(axis=1) == int8_probabilities.argmax(axis=1))),
              "max_abs_probability_change": float(np.abs(float_probabilities - int8_probabilities).max()),
              "float32_file_bytes": os.path.getsize(args.model), "int8_file_bytes": int8_bytes,
              "quantized_kernels": len(small.quantization["weights"]), "calibration": small.quantization["calibration"],
              "minidl": dl.__version__, "numpy": np.__version__}
    record["size_ratio"] = record["float32_file_bytes"] / int8_bytes
    print(json.dumps(record), file=sys.stderr)
    records = json.loads(args.output.read_text()) if args.output.exists() else []
    records = [r for r in records if (r.get("model_file"), r.get("split"), r.get("held_out")) !=
               (record["model_file"], record["split"], record["held_out"])] + [record]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    main()
