"""Connected digits with CTC: from a recording of several spoken digits to the digit string.

Isolated digits are a classification problem; reading "4 0 7 1" from one recording is a
sequence problem, and nobody tells the network where each digit starts. CTC (Graves et al.,
2006) trains it anyway: the network emits a distribution over blank + 10 digits per frame and
the loss sums over every alignment of the transcript. The story:

    1. data      utterances of 2-7 FSDD digits by one speaker, joined with short gaps
                 (audio.connected_digits; official split: test strings only from takes 0-4)
    2. features  HTK MFCCs + deltas, CMVN per utterance
    3. model     Conv1D (stride 3) -> Bidirectional GRU -> Dense(11), log_softmax
    4. training  the hand-written loop: forward, ctc_loss, backward, Adam
    5. results   sequence accuracy and digit (word) error rate, greedy and beam search
    6. figure    CTC posteriors over time for one test utterance, with its alignment

    python examples/connected_digits_ctc.py --epochs 12 --out runs/connected_digits_ctc

Writes ``model.npz`` (with its feature settings: ``minidl-digits transcribe model.npz
file.wav`` reads it), ``metrics.json`` and ``posteriors.png`` to the output folder. Needs the
FSDD recordings (see audio.fsdd: ``$MINIDL_DATA/fsdd``, or a download).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

import numpy as np

import minidl as dl
from audio.connected_digits import ConnectedDigits
from minidl.apps import ctc_digits, plots
from minidl.optimizers import Adam


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=12, help="passes over the training strings")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, weights, shuffling")
    parser.add_argument("--backend", choices=("numpy", "cupy"), default="numpy")
    parser.add_argument("--out", default="runs/connected_digits_ctc", help="output folder")
    parser.add_argument("--train-utterances", type=int, default=2000)
    parser.add_argument("--test-utterances", type=int, default=500)
    parser.add_argument("--snr-db", type=float, default=None,
                        help="add white noise at this SNR to train and test strings")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--cell", choices=("gru", "lstm"), default="gru")
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--beam-width", type=int, default=8)
    parser.add_argument("--fsdd", default=None, help="FSDD folder (default: the lookup order)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dl.backend.use(args.backend)
    dl.random.seed(args.seed)

    # 1. Data: strings of 2-7 digits, each said by one speaker, from the official split.
    common = dict(seed=args.seed, snr_db=args.snr_db)
    train_set = ConnectedDigits(args.fsdd, subset="train", num_utterances=args.train_utterances,
                                **common)
    test_set = ConnectedDigits(args.fsdd, subset="test", num_utterances=args.test_utterances,
                               fsdd=train_set.fsdd, **common)
    print(f"{len(train_set)} training strings, {len(test_set)} test strings, "
          f"e.g. {test_set.utterances[0].transcript!r} by {test_set.utterances[0].speaker}")

    # 2. Features: (frames, 26) per utterance; the MFCCs are cached after the first run.
    features = ctc_digits.FEATURES   # HTK MFCCs + deltas, CMVN per utterance
    start = time.perf_counter()
    train_x = ctc_digits.dataset_features(train_set, features)
    test_x = ctc_digits.dataset_features(test_set, features)
    train_y, test_y = train_set.transcripts(), test_set.transcripts()
    feature_seconds = time.perf_counter() - start

    # 3. Model: Conv1D -> Bidirectional GRU -> Dense(11); class 0 is the blank.
    settings = ctc_digits.ModelSettings(units=args.units, cell=args.cell)
    model = ctc_digits.build_model(features.n_features, settings)
    optimizer = Adam(learning_rate=args.learning_rate, clipnorm=5.0)

    # 4. Training: forward, ctc_loss, backward, optimizer.apply — one batch at a time.
    rng = np.random.default_rng(args.seed)
    history = []
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        if epoch == args.epochs - args.epochs // 4 + 1 and args.epochs >= 4:
            optimizer.learning_rate = args.learning_rate / 3  # settle in the last quarter
        loss = ctc_digits.train_epoch(model, optimizer, train_x, train_y, args.batch_size, rng)
        history.append({"epoch": epoch, "loss": loss,
                        "seconds": round(time.perf_counter() - start, 1)})
        print(f"epoch {epoch:2d}/{args.epochs}: CTC loss per digit {loss:.4f}  "
              f"({history[-1]['seconds']:.0f} s)", flush=True)
    train_seconds = time.perf_counter() - start

    # 5. Results on the test strings, best path and prefix beam search.
    start = time.perf_counter()
    results = ctc_digits.evaluate(model, test_x, test_y, beam_width=args.beam_width)
    evaluate_seconds = time.perf_counter() - start
    for kind in ("greedy", "beam"):
        print(f"{kind:>6}: digit error rate {100 * results[kind]['wer']:.2f}%, whole strings "
              f"right {100 * results[kind]['sequence_accuracy']:.2f}%")

    # 6. Figure: the posteriors of the first test string, and where each digit was read.
    example = 0
    log_probs = ctc_digits.predict_log_probs(model, [test_x[example]])[0]
    try:
        forced = ctc_digits.forced_alignment(log_probs, test_y[example])
    except ValueError:   # too few output frames for the reference: draw no forced path
        forced = None
    plots.plot_posteriors(log_probs, test_x[example], test_y[example], results["beam_strings"][example],
                          settings.strides, out / "posteriors.png", forced, blank=ctc_digits.BLANK)

    ctc_digits.save(model, out / "model.npz", features, settings)
    errors = [{"reference": r, "beam": h} for r, h in zip(test_y, results["beam_strings"]) if r != h]
    metrics = {
        "task": ctc_digits.TASK, "split": "official",
        "test": {"greedy": results["greedy"], "beam": results["beam"],
                 "beam_width": args.beam_width, "utterances": len(test_y),
                 "digits": sum(len(t) for t in test_y)},
        "train_utterances": len(train_y), "epochs": args.epochs,
        "training_seconds": round(train_seconds, 1), "feature_seconds": round(feature_seconds, 1),
        "evaluate_seconds": round(evaluate_seconds, 1), "parameters": model.count_params(),
        "history": history, "errors": errors[:50],
        "settings": {key: value for key, value in vars(args).items()},
        "model": settings.to_dict(), "features": features.to_dict(),
        "versions": {"minidl": dl.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    print(f"training took {train_seconds:.0f} s; model, metrics.json and posteriors.png in {out}")
    return metrics


if __name__ == "__main__":
    main()
