"""The ``minidl-digits`` command: train, evaluate, predict, stream, transcribe.

    minidl-digits train --out runs/demo                  # the recommended recipe (apps/recipes.py)
    minidl-digits train --recipe none --model cnn --epochs 25 --out runs/cnn
    minidl-digits predict runs/demo/model.npz some.wav other.wav     # PATH<TAB>DIGIT<TAB>PROBABILITY
    minidl-digits stream runs/demo/model.npz three_digits.wav        # digits as they are heard
    minidl-digits transcribe runs/connected_digits_ctc/model.npz 4071.wav

Each subcommand is a few lines over ``minidl.apps.digits``, ``streaming`` and ``ctc_digits``.
The training options and the run over held-out speakers (``add_training_options``,
``run_training``) are shared with the stories in ``examples/digits_*.py``.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
from typing import Callable

import numpy as np

import audio
from minidl.apps import ctc_digits, digits
from minidl.apps.recipes import RECIPES, RECOMMENDED, recipe
from minidl.apps.streaming import stream_file


def add_training_options(parser: argparse.ArgumentParser, model: str | None = None,
                         recipe: str = "none") -> None:
    """The options every training story and `minidl-digits train` share.

    Args:
        model: the one model a story trains (no --model option then), or None for a choice.
        recipe: the default of --recipe: a name of minidl.apps.recipes, or "none" (the
            options alone say what is trained).
    """
    if model is None:
        parser.add_argument("--model", choices=digits.MODEL_KINDS, default=None,
                            help="with --recipe none (default cnn); a recipe names its own model")
        parser.add_argument("--recipe", choices=(*RECIPES, "none"), default=recipe,
                            help=f"features + augmentation + model + schedule by name (default {recipe}; "
                                 f"see minidl/apps/recipes.py); 'none' for the options alone")
    else:
        parser.set_defaults(model=model, recipe="none")
    parser.add_argument("--epochs", type=int, default=None,
                        help="passes over the training data (default: the model's, digits.DEFAULT_EPOCHS)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", choices=("official", "speaker"), default="official")
    parser.add_argument("--held-out", default=None,
                        help="speaker held out with --split speaker, or 'all' for each in turn")
    parser.add_argument("--backend", choices=("numpy", "cupy"), default="numpy")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--augment", action="store_true", help="train on augmented copies of each recording (TrainSettings.augmentation: speed, noise, VTLP)")
    parser.add_argument("--out", default=None, help="output folder (default runs/<story>)")
    parser.add_argument("--data", default=None,
                        help="FSDD folder (default: $MINIDL_DATA/fsdd, then ~/.cache/minidl/fsdd, then download)")
    parser.add_argument("--verbose", type=int, default=1)


def run_training(args: argparse.Namespace, story: str, train: Callable[..., dict] = digits.train) -> list[dict]:
    """Run ``train`` as the parsed options ask; with --held-out all, once per speaker.

    Args:
        args: add_training_options' options, parsed.
        story: names the default output folder, runs/<story>.
        train: ``train(settings, out, fsdd=, verbose=) -> metrics``, as digits.train.
    Returns:
        One metrics dict per run; with --held-out all, summary.json is written beside them.
    Raises:
        SystemExit: options that do not go together, or no FSDD recordings to be found.
    """
    named = getattr(args, "recipe", "none") != "none"
    if named and args.model is not None and args.model != RECIPES[args.recipe][1]["model"]:
        raise SystemExit(f"minidl-digits: --model {args.model} does not go with --recipe {args.recipe}, which "
                         f"trains a {RECIPES[args.recipe][1]['model']}; add --recipe none to choose the model")
    kind = RECIPES[args.recipe][1]["model"] if named else (args.model or "cnn")
    out = pathlib.Path(args.out or f"runs/{story}")
    epochs = args.epochs or (RECIPES[args.recipe][1]["epochs"] if named else digits.DEFAULT_EPOCHS[kind])
    if args.split == "speaker" and not args.held_out:
        raise SystemExit("--split speaker needs --held-out NAME or --held-out all")
    if args.split == "official" and args.held_out:
        raise SystemExit("--held-out applies to --split speaker")
    try:
        fsdd = audio.fsdd.FSDD(args.data)
    except FileNotFoundError as error:  # no copy and no download: one clear message, no traceback
        raise SystemExit(f"minidl-digits: {error}") from None
    held_outs = fsdd.speakers() if args.held_out == "all" else [args.held_out]
    results = []
    for held_out in held_outs:
        chosen = dict(epochs=epochs, batch_size=args.batch_size, seed=args.seed, split=args.split,
                      held_out=held_out, backend=args.backend)
        folder = out if held_out is None or args.held_out != "all" else out / f"held_out_{held_out}"
        if named:
            settings, features = recipe(args.recipe, **chosen)
            metrics = digits.train(settings, folder, features=features, fsdd=fsdd, verbose=args.verbose)
        else:
            settings = digits.TrainSettings(model=kind, augment=args.augment, **chosen)
            metrics = train(settings, folder, fsdd=fsdd, verbose=args.verbose)
        who = f" ({held_out} held out)" if held_out else ""
        print(f"{kind}{who}: test accuracy {100 * metrics['test_accuracy']:.2f}% "
              f"after {epochs} epochs, {metrics['training_seconds']:.0f} s of training; files in {folder}")
        results.append(metrics)
    if len(results) > 1:
        write_summary(results, kind, out)
    return results


def write_summary(results: list[dict], kind: str, out: pathlib.Path) -> dict:
    """Mean and worst accuracy over the held-out speakers, written to out/summary.json."""
    accuracies = [m["test_accuracy"] for m in results]
    summary = {"model": kind, "split": "speaker", "mean_accuracy": float(np.mean(accuracies)),
               "worst_accuracy": float(np.min(accuracies)),
               "worst_speaker": results[int(np.argmin(accuracies))]["held_out"],
               "per_speaker": {m["held_out"]: m["test_accuracy"] for m in results},
               "training_seconds": round(sum(m["training_seconds"] for m in results), 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"each speaker held out in turn: mean {100 * summary['mean_accuracy']:.1f}%, worst "
          f"{100 * summary['worst_accuracy']:.1f}% ({summary['worst_speaker']})")
    return summary


def parser() -> argparse.ArgumentParser:
    """The command's options, one subparser per subcommand."""
    command = argparse.ArgumentParser(prog="minidl-digits", description="Spoken-digit recognition with minidl.")
    commands = command.add_subparsers(dest="command", required=True)
    add_training_options(commands.add_parser("train", help="train a model on FSDD"), recipe=RECOMMENDED)
    evaluate = commands.add_parser("evaluate", help="accuracy of a saved model on an FSDD split")
    evaluate.add_argument("model")
    evaluate.add_argument("--split", choices=("official", "speaker"), default="official")
    evaluate.add_argument("--held-out", default=None)
    evaluate.add_argument("--data", default=None, help="FSDD folder (default: the lookup order)")
    predict = commands.add_parser("predict", help="the digit spoken in each WAV file")
    predict.add_argument("model")
    predict.add_argument("files", nargs="+")
    predict.add_argument("--json", action="store_true", help="one JSON object per line")
    stream = commands.add_parser("stream", help="find digits in a file fed in 100 ms chunks")
    stream.add_argument("model")
    stream.add_argument("file")
    stream.add_argument("--chunk-ms", type=float, default=100.0)
    transcribe = commands.add_parser("transcribe", help="the digit string of a connected-digit file (CTC model)")
    transcribe.add_argument("model")
    transcribe.add_argument("file")
    return command


def evaluate(args: argparse.Namespace) -> int:
    """Print {model, split, held_out, test_accuracy, files} as one JSON line."""
    recogniser = digits.Recogniser(args.model)
    fsdd = audio.fsdd.FSDD(args.data)
    _, test = fsdd.split(args.split, held_out=args.held_out)
    report = digits.classification_report(
        np.array([r.digit for r in test]),
        recogniser.probabilities(digits.dataset_features(fsdd, test, recogniser.features)))
    print(json.dumps({"model": str(args.model), "split": args.split, "held_out": args.held_out,
                      "test_accuracy": report["accuracy"], "files": len(test)}))
    return 0


def predict(args: argparse.Namespace) -> int:
    """Print PATH<TAB>DIGIT<TAB>PROBABILITY (or JSON) per file; 1 if any file could not be read."""
    failed = False
    for result in digits.predict_files(args.model, args.files):
        if "error" in result:
            failed = True
            print(f"minidl-digits: {result['error']}", file=sys.stderr)
            continue
        print(json.dumps(result) if args.json else f"{result['path']}\t{result['digit']}\t{result['probability']:.4f}")
    return 1 if failed else 0


def stream(args: argparse.Namespace) -> int:
    """Print each digit as the endpointer finds it; 1 if the file cannot be read."""
    try:
        for found in stream_file(args.model, args.file, chunk_ms=args.chunk_ms):
            print(f"{found['end_s']:7.2f} s  digit {found['digit']}  p={found['probability']:.3f}  "
                  f"latency {1000 * found['latency_s']:.0f} ms", flush=True)
    except audio.AudioError as error:
        print(f"minidl-digits: {error}", file=sys.stderr)
        return 1
    return 0


def transcribe(args: argparse.Namespace) -> int:
    """Print the digit string of a connected-digit file; 1 if the file cannot be read."""
    try:
        print(ctc_digits.transcribe(args.model, args.file))
    except audio.AudioError as error:
        print(f"minidl-digits: {error}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """The ``minidl-digits`` command; returns its exit status."""
    args = parser().parse_args(argv)
    if args.command == "train":
        run_training(args, f"digits_{args.model}")
        return 0
    handlers = {"evaluate": evaluate, "predict": predict, "stream": stream, "transcribe": transcribe}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
