"""The ``minidl-digits`` command: train, evaluate, predict, stream, transcribe.

    minidl-digits train --out runs/demo                  # the recommended recipe (minidl/apps/recipes.py)
    minidl-digits train --recipe none --model cnn --epochs 25 --out runs/cnn   # the options alone
    minidl-digits predict runs/demo some.wav other.wav     # PATH<TAB>DIGIT<TAB>PROBABILITY
    minidl-digits stream runs/demo three_digits.wav        # digits as they are heard
    minidl-digits transcribe runs/connected_digits_ctc/model.npz 4071.wav
    minidl-digits export runs/demo/members/voices/model.npz model.onnx   # ONNX Runtime (needs onnx)

Each subcommand is a few lines over ``minidl.apps.digits``, ``streaming`` and ``ctc_digits``.
The training options and the run over held-out speakers (``add_training_options``,
``run_training``) are shared with the stories in ``examples/digits_*.py``.

A file the command cannot use - a model file that is damaged, hostile or of another task, an
audio file that is missing, unreadable or out of bounds - is one line on stderr,
``minidl-digits: <file>: <what is wrong>``, and exit status 1; ``predict`` goes on with the next
file and fails at the end, as a batch tool does. Any other exception is a bug and keeps its
traceback. Numbers on the command line are checked by argparse (exit status 2), and file names
and labels are escaped (``audio.io.printable``) before they reach the terminal.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
from typing import Callable

import numpy as np

import audio
from audio.io import printable
from minidl.apps import ctc_digits, digits
from minidl.apps.ensemble import is_ensemble, load_recogniser, train_ensemble
from minidl.apps.recipes import ENSEMBLES, RECIPES, RECOMMENDED, recipe
from minidl.apps.streaming import check_chunk_ms, stream_file
from minidl.cpu import coretype_note
from minidl.export import ExportError
from minidl.export import onnx as export_onnx
from minidl.saving import read_metadata

# The project's own errors about a file the command was given: each is one line naming the file.
# A model file's are ModelFileError (a ValueError) or FileNotFoundError; an audio file's are
# AudioError (audio.load turns the OSErrors into it; they are listed for any that get past).
MODEL_ERRORS = (ValueError, FileNotFoundError, PermissionError, IsADirectoryError)
INPUT_ERRORS = (audio.AudioError, FileNotFoundError, PermissionError, IsADirectoryError)


# --- numbers on the command line ------------------------------------------------------------------
def whole_number(lowest: int, why: str) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``lowest``; ``why`` names the options it is for."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < lowest:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {lowest}, got {text!r}")
        return value
    parse.__doc__ = f"argparse type: a whole number >= {lowest} ({why})."
    return parse


def verbosity(text: str) -> int | str:
    """argparse type of --verbose: "auto", 0, 1 or 2, as fit takes it."""
    if text == "auto":
        return text
    if text not in ("0", "1", "2"):
        raise argparse.ArgumentTypeError(f"must be auto, 0, 1 or 2, got {text!r}")
    return int(text)


positive_int = whole_number(1, "--epochs, --batch-size")
non_negative_int = whole_number(0, "--seed: numpy's generators take no negative seed")


def chunk_milliseconds(text: str) -> float:
    """argparse type: --chunk-ms, milliseconds in streaming's range (check_chunk_ms)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of milliseconds, got {text!r}") from None
    try:
        return check_chunk_ms(value)
    except ValueError as error:   # "chunk_ms must be ...": argparse names the option itself
        raise argparse.ArgumentTypeError(str(error).removeprefix("chunk_ms ")) from None


# --- one line per file the command cannot use ---------------------------------------------------------
# How the project's messages start when they name the file first; error_line says the name itself.
_NAMED_PREFIXES = ("cannot load {}: ", "cannot read model file {}: ", "model file {}: ")


def error_line(name: str | os.PathLike | None, error: BaseException | str) -> str:
    """``minidl-digits: <name>: <what is wrong>``, one line, for a file the command cannot use.

    The name is escaped by audio.io.printable, so a newline in it cannot forge a line; the reason
    is the error's message without its own mention of the file at the start, its control
    characters escaped. ``name`` None (a file deep in a data set) gives ``minidl-digits: <message>``.
    """
    if isinstance(error, OSError) and error.strerror and not isinstance(error, audio.AudioError):
        reason = error.strerror[:1].lower() + error.strerror[1:]   # "No such file or directory"
    else:
        reason = str(error)
        if name is not None:
            spellings = {printable(name), printable(pathlib.Path(name)), repr(os.fspath(name)),
                         repr(str(pathlib.Path(name)))}
            for prefix in (p.format(spelling) for p in _NAMED_PREFIXES for spelling in spellings):
                if reason.startswith(prefix):
                    reason = reason[len(prefix):]
                    break
    reason = "".join(c if c.isprintable() else printable(c) for c in reason)
    return f"minidl-digits: {reason}" if name is None else f"minidl-digits: {printable(name)}: {reason}"


def report(name: str | os.PathLike | None, error: BaseException | str) -> int:
    """Print error_line to stderr; the exit status, 1."""
    print(error_line(name, error), file=sys.stderr, flush=True)
    return 1


def load_or_report(load: Callable, path: str):
    """``load(path)`` (a Recogniser or Transcriber), or None once the reason is printed."""
    try:
        return load(path)
    except MODEL_ERRORS as error:
        report(path, error)
        return None


def open_fsdd(data: str | None) -> audio.fsdd.FSDD:
    """FSDD at ``data`` (or by the lookup order).

    Raises:
        SystemExit: with one line when no copy can be found or fetched.
    """
    try:
        return audio.fsdd.FSDD(data)
    except FileNotFoundError as error:  # no copy and no download: one clear message, no traceback
        raise SystemExit(f"minidl-digits: {error}") from None


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
        parser.add_argument("--recipe", choices=(*RECIPES, *ENSEMBLES, "none"), default=recipe,
                            help=f"features + augmentation + model + schedule by name (default {recipe}; "
                                 f"see minidl/apps/recipes.py); 'none' for the options alone")
    else:
        parser.set_defaults(model=model, recipe="none")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="passes over the training data (default: the model's, digits.DEFAULT_EPOCHS)")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--split", choices=("official", "speaker"), default="official")
    parser.add_argument("--held-out", default=None,
                        help="speaker held out with --split speaker, or 'all' for each in turn")
    parser.add_argument("--backend", choices=("numpy", "cupy"), default="numpy")
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--augment", action="store_true", help="train on augmented copies of each recording (TrainSettings.augmentation: speed, noise, VTLP)")
    parser.add_argument("--out", default=None, help="output folder (default runs/<story>)")
    parser.add_argument("--data", default=None,
                        help="FSDD folder (default: $MINIDL_DATA/fsdd, then ~/.cache/minidl/fsdd, then download)")
    parser.add_argument("--verbose", type=verbosity, default="auto",
                        help="0 silent, 1 a progress bar, 2 a line per epoch; auto (default): 1 on a "
                             "terminal, 2 otherwise (a log file gets lines, not carriage returns)")


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
    name = getattr(args, "recipe", "none")
    ensemble, named = name in ENSEMBLES, name in RECIPES
    if ensemble:
        kind, epochs = "ensemble", args.epochs   # None: each member's own
    elif named:
        kind, epochs = RECIPES[name][1]["model"], args.epochs or RECIPES[name][1]["epochs"]
    else:
        kind = args.model or "cnn"
        epochs = args.epochs or digits.DEFAULT_EPOCHS[kind]
    if (ensemble or named) and args.model is not None and args.model != kind:
        raise SystemExit(f"minidl-digits: --model {args.model} does not go with --recipe {name}, which "
                         f"trains {'an ' if ensemble else 'a '}{kind}; add --recipe none to choose the model")
    out = pathlib.Path(args.out or f"runs/{story}")
    if args.split == "speaker" and not args.held_out:
        raise SystemExit("--split speaker needs --held-out NAME or --held-out all")
    if args.split == "official" and args.held_out:
        raise SystemExit("--held-out applies to --split speaker")
    note = coretype_note()  # NumPy's BLAS held to another core's kernels: training may run slower, say why
    if note:
        print(f"minidl-digits: note: {note}", file=sys.stderr)
    fsdd = open_fsdd(args.data)
    held_outs = fsdd.speakers() if args.held_out == "all" else [args.held_out]
    results = []
    for held_out in held_outs:
        chosen = dict(epochs=epochs, batch_size=args.batch_size, seed=args.seed, split=args.split,
                      held_out=held_out, backend=args.backend)
        folder = out if held_out is None or args.held_out != "all" else out / f"held_out_{held_out}"
        if ensemble:
            if epochs is None:
                del chosen["epochs"]
            metrics = train_ensemble(name, folder, fsdd=fsdd, verbose=args.verbose, **chosen)
        elif named:
            settings, features = recipe(name, **chosen)
            metrics = digits.train(settings, folder, features=features, fsdd=fsdd, verbose=args.verbose)
        else:
            settings = digits.TrainSettings(model=kind, augment=args.augment, **chosen)
            metrics = train(settings, folder, fsdd=fsdd, verbose=args.verbose)
        who = f" ({held_out} held out)" if held_out else ""
        schedule = f"{epochs} epochs" if epochs else "each member's epochs"
        members = "".join(f"; {member} {100 * a:.2f}%" for member, a in metrics.get("members", {}).items())
        print(f"{kind}{who}: test accuracy {100 * metrics['test_accuracy']:.2f}%{members}, "
              f"after {schedule}, {metrics['training_seconds']:.0f} s of training; files in {folder}")
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
    evaluate.add_argument("model", help="a model file (model.npz), a run folder holding one, or an ensemble folder (ensemble.json)")
    evaluate.add_argument("--split", choices=("official", "speaker"), default="official")
    evaluate.add_argument("--held-out", default=None)
    evaluate.add_argument("--data", default=None, help="FSDD folder (default: the lookup order)")
    predict = commands.add_parser("predict", help="the digit spoken in each WAV file")
    predict.add_argument("model", help="a model file (model.npz), a run folder holding one, or an ensemble folder (ensemble.json)")
    predict.add_argument("files", nargs="+")
    predict.add_argument("--json", action="store_true", help="one JSON object per line")
    stream = commands.add_parser("stream", help="find digits in a file fed in 100 ms chunks")
    stream.add_argument("model", help="a model file (model.npz), a run folder holding one, or an ensemble folder (ensemble.json)")
    stream.add_argument("file")
    stream.add_argument("--chunk-ms", type=chunk_milliseconds, default=100.0,
                        help="milliseconds per chunk, from 1 to 60000 (default 100)")
    transcribe = commands.add_parser("transcribe", help="the digit string of a connected-digit file (CTC model)")
    transcribe.add_argument("model")
    transcribe.add_argument("file")
    export = commands.add_parser("export", help="write a saved model as ONNX, for ONNX Runtime (needs onnx)")
    export.add_argument("model")
    export.add_argument("out", help="the .onnx file to write")
    export.add_argument("--opset", type=whole_number(17, "--opset: LayerNormalization needs 17"), default=17)
    return command


def evaluate(args: argparse.Namespace) -> int:
    """Print {model, split, held_out, test_accuracy, files} as one JSON line; 1 if the model or a
    recording cannot be read."""
    recogniser = load_or_report(load_recogniser, args.model)
    if recogniser is None:
        return 1
    fsdd = open_fsdd(args.data)
    try:
        _, test = fsdd.split(args.split, held_out=args.held_out)
    except ValueError as error:   # --held-out missing, unknown, or given with --split official
        raise SystemExit(f"minidl-digits: {error}") from None
    problem = None
    try:
        probabilities = recogniser.recording_probabilities(fsdd, test)
    except audio.AudioError as error:   # its message names the recording
        problem = str(error)
    if problem is not None:
        # reported out here: the progress bar closes (its own line ended) once the exception's
        # frames are gone, so the message gets a line of its own
        return report(None, problem)
    scores = digits.classification_report(np.array([r.digit for r in test]), probabilities)
    print(json.dumps({"model": str(args.model), "split": args.split, "held_out": args.held_out,
                      "test_accuracy": scores["accuracy"], "files": len(test)}))
    return 0


def predict(args: argparse.Namespace) -> int:
    """Print PATH<TAB>DIGIT<TAB>PROBABILITY (or JSON) per file as it is answered; 1 if the model
    or any file could not be read (the others are still answered)."""
    recogniser = load_or_report(load_recogniser, args.model)
    if recogniser is None:
        return 1
    failed = False
    for path in args.files:
        try:
            result = recogniser.predict_file(path, max_seconds=digits.MAX_PREDICT_SECONDS)
        except INPUT_ERRORS as error:
            failed = True
            report(path, error)
            continue
        # json.dumps escapes control characters itself; the tab-separated line needs printable
        if args.json:
            line = json.dumps(result)
        else:
            line = f"{printable(result['path'])}\t{printable(result['digit'])}\t{result['probability']:.4f}"
        print(line, flush=True)
    return 1 if failed else 0


def stream(args: argparse.Namespace) -> int:
    """Print each digit as the endpointer finds it; 1 if the model or the file cannot be read."""
    recogniser = load_or_report(load_recogniser, args.model)
    if recogniser is None:
        return 1
    try:
        for found in stream_file(recogniser, args.file, chunk_ms=args.chunk_ms):
            print(f"{found['end_s']:7.2f} s  digit {printable(found['digit'])}  p={found['probability']:.3f}  "
                  f"latency {1000 * found['latency_s']:.0f} ms", flush=True)
    except INPUT_ERRORS as error:
        return report(args.file, error)
    return 0


def transcribe(args: argparse.Namespace) -> int:
    """Print the digit string of a connected-digit file; 1 if the model or the file cannot be read."""
    transcriber = load_or_report(ctc_digits.Transcriber, args.model)
    if transcriber is None:
        return 1
    try:
        text = transcriber.transcribe_file(args.file)
    except INPUT_ERRORS as error:
        return report(args.file, error)
    print(printable(text))
    return 0


def export(args: argparse.Namespace) -> int:
    """Write the digit or CTC model as ONNX (its metadata stored in the file) and print one JSON
    line; 1 if the model cannot be read or exported. A CTC model gets a ``mask`` input and
    per-frame posteriors (softmax) as its output, with ``output_mask`` for the lengths. An
    ensemble is refused: ONNX gets one model, so each member is exported on its own."""
    if is_ensemble(args.model):
        return report(args.model, "an ensemble of several models; export each member's model.npz "
                                  "(its members/<recipe>/ folders) on its own")
    try:
        metadata = read_metadata(args.model)
    except MODEL_ERRORS as error:
        return report(args.model, error)
    ctc = isinstance(metadata, dict) and metadata.get("task") == ctc_digits.TASK
    loaded = load_or_report(ctc_digits.Transcriber if ctc else digits.Recogniser, args.model)
    if loaded is None:
        return 1
    try:
        export_onnx(loaded.model, args.out, opset=args.opset, mask_input=ctc,
                    final_activation="softmax" if ctc else None, metadata=metadata)
    except (ExportError, ImportError, OSError) as error:
        return report(args.out, error)
    print(json.dumps({"model": str(args.model), "onnx": str(args.out), "opset": args.opset,
                      "inputs": ["input", "mask"] if ctc else ["input"]}))
    return 0


def main(argv: list[str] | None = None) -> int:
    """The ``minidl-digits`` command; returns its exit status."""
    args = parser().parse_args(argv)
    if args.command == "train":
        try:
            run_training(args, f"digits_{args.model or args.recipe}")
        except audio.AudioError as error:   # a damaged recording; its message names it
            return report(None, error)
        return 0
    handlers = {"evaluate": evaluate, "predict": predict, "stream": stream, "transcribe": transcribe,
                "export": export}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
