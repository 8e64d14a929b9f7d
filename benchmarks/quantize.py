"""What int8 kernels cost a digit model: test accuracy and file size, float32 beside int8.

    python benchmarks/quantize.py --model runs/crnn/model.npz                          # official split
    python benchmarks/quantize.py --model runs/crnn_theo/model.npz --split speaker --held-out theo

The model is quantised with ``dl.quantize`` (per-channel int8 kernels, float16 scales and
biases), calibrated on 64 files of the training split (the calibration only measures;
weight-only quantisation needs no data), saved with ``dl.quantize.save`` and loaded back, and
both models classify the test split's files: the int8 accuracy is that of the model read back
from the file. The float32 file it is compared with is the same model, loaded uncompiled and written by
``dl.saving.save_model``: weights, config, the same metadata (and ``dl.random``'s state, 162
bytes), without compile settings or optimizer state, as the int8 file; a training run's file
also holds the optimizer's moments, twice the weights again (``given_model_file_bytes``). The record says where the int8 file's bytes go
(``int8_file_breakdown``) and the ratio a file holding only the numbers would reach
(``payload_floor_ratio``). Results: benchmarks/results/quantize.json, one record per (model
file, split), replacing an earlier record of the same pair.
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


def file_breakdown(path: Path) -> dict:
    """Where an int8 model file's bytes go: by member, as stored (deflated) in the zip."""
    import zipfile

    names = {"weight_0000.npy": "int8_kernels", "weight_0001.npy": "float16_scales_and_biases",
             "weight_0002.npy": "float32_other_weights", "config.npy": "config_json"}
    with zipfile.ZipFile(path) as archive:
        parts = {names[info.filename]: info.compress_size for info in archive.infolist()}
        parts["zip_entries_npy_headers_and_directory"] = path.stat().st_size - sum(parts.values())
        parts["members"] = len(archive.infolist())
    return parts


def payload_bytes(small) -> int:
    """Bytes of the numbers alone: int8 kernels, float16 scales and biases, other weights float32."""
    weights, record = small.get_weights(), small.quantization
    kernels, half = record["weights"], set(record["float16"])
    return sum(w.size * (1 if i in kernels else 2 if i in half else 4) for i, w in enumerate(weights)) + \
        sum(2 * len(scales) for scales in kernels.values())


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
    metadata = dl.saving.read_metadata(args.model)
    with tempfile.TemporaryDirectory() as scratch:
        path, float_path = Path(scratch) / "model_int8.npz", Path(scratch) / "model_float32.npz"
        dl.quantize.save(small, path, metadata=metadata)
        # uncompiled, as the int8 file: no compile settings or optimizer moments in either
        dl.saving.save_model(dl.load_model(args.model, compile=False), float_path, metadata=metadata)
        int8_bytes, float_bytes = path.stat().st_size, float_path.stat().st_size
        breakdown = file_breakdown(path)
        loaded = dl.quantize.load(path)
    float_probabilities = recogniser.probabilities(test_x)
    recogniser.model = loaded
    int8_probabilities = recogniser.probabilities(test_x)
    record = {"name": f"quantize/digits_{recogniser.kind}", "model_file": str(args.model), "split": args.split,
              "held_out": args.held_out, "files": len(test),
              "float32_accuracy": float(np.mean(float_probabilities.argmax(axis=1) == labels)),
              "int8_accuracy": float(np.mean(int8_probabilities.argmax(axis=1) == labels)),
              "same_prediction": float(np.mean(float_probabilities.argmax(axis=1) == int8_probabilities.argmax(axis=1))),
              "same_prediction_files": int(np.sum(float_probabilities.argmax(axis=1) ==
                                                  int8_probabilities.argmax(axis=1))),
              "max_abs_probability_change": float(np.abs(float_probabilities - int8_probabilities).max()),
              "float32_file_bytes": float_bytes, "given_model_file_bytes": os.path.getsize(args.model),
              "int8_file_bytes": int8_bytes, "int8_file_format": "packed members, float16 scales and biases",
              "quantized_kernels": len(small.quantization["weights"]),
              "float16_weights": len(small.quantization["float16"]), "calibration": small.quantization["calibration"],
              "int8_file_breakdown": breakdown,
              # the numbers alone, undeflated: int8 kernels, float16 scales and biases, the rest float32
              "payload_floor_ratio": float_bytes / payload_bytes(small),
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
