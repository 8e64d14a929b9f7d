"""How the digit CNN copes with noise, and what augmentation and denoising buy back.

1. Train the CNN twice on the official split: on clean recordings, and with augmentation (each
   training recording also heard once more with white noise at 0-30 dB SNR and its speed
   changed by up to ±10%: audio.augment.add_noise, audio.augment.speed_perturb).
2. Test both on the 300 test recordings with white noise added at 20, 10, 5 and 0 dB SNR
   (and clean), with and without audio.denoise.spectral_subtraction before the features.
3. With --model (a saved model or ensemble folder, e.g. the recommended recipe's runs/demo),
   test it in the same conditions, on the same noise.
4. Write noise.json (accuracy per condition) and noise.png (accuracy against SNR).

Each training is minidl.apps.digits.train, the story of examples/digits_cnn.py in one call.

    python examples/digits_noise.py --epochs 25 --out runs/digits_noise [--model runs/demo]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

import audio
from audio import augment
from audio.denoise import spectral_subtraction
from minidl.apps import digits
from minidl.apps.ensemble import Ensemble, load_recogniser
from minidl.apps.features import FeatureSettings
from minidl.apps.plots import plot_noise

SNRS = [None, 20, 10, 5, 0]   # None: clean


def noisy_accuracy(recogniser: digits.Recogniser | Ensemble, signals, labels, snr_db, denoise: bool,
                   seed: int) -> float:
    """Accuracy on the test signals with white noise at ``snr_db`` (same noise for every model)."""
    rng = np.random.default_rng(seed)
    noisy = []
    rate = recogniser.features.sample_rate
    for signal in signals:   # recordings differ in length: one at a time
        if snr_db is not None:
            signal = augment.add_noise(signal, snr_db, rng=rng)
        if denoise:
            signal = spectral_subtraction(signal, rate)
        noisy.append(signal)
    predicted = recogniser.signal_probabilities(noisy).argmax(axis=1)
    return float(np.mean(predicted == labels))


def conditions(recogniser, name: str, signals, labels, seed: int) -> dict:
    """{"<name>, no denoising" / "<name>, spectral subtraction": accuracy per SNR}, printed too."""
    table = {}
    for denoise in (False, True):
        key = f"{name}, {'spectral subtraction' if denoise else 'no denoising'}"
        table[key] = [{"snr_db": 40 if snr is None else snr, "clean": snr is None,
                       "accuracy": noisy_accuracy(recogniser, signals, labels, snr, denoise, seed)}
                      for snr in SNRS]
        print(key + ": " + ", ".join(f"{'clean' if p['clean'] else str(p['snr_db']) + ' dB'} "
                                     f"{100 * p['accuracy']:.1f}%" for p in table[key]), flush=True)
    return table


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", choices=("numpy", "cupy"), default="numpy")
    parser.add_argument("--out", default="runs/digits_noise")
    parser.add_argument("--verbose", type=int, default=2)
    parser.add_argument("--data", default=None, help="FSDD folder (default: the lookup order)")
    parser.add_argument("--model", default=None,
                        help="a saved model or ensemble folder trained on the official split (e.g. runs/demo), "
                             "tested in the same conditions beside the two CNNs")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    fsdd = audio.fsdd.FSDD(args.data)
    _, test = fsdd.split("official")
    settings = FeatureSettings()
    signals = [audio.load(r.path, sample_rate=settings.sample_rate)[0] for r in test]
    labels = np.array([r.digit for r in test])

    table, summary = {}, {}
    for augmented in (False, True):
        name = "augmented" if augmented else "clean"
        run = digits.TrainSettings(model="cnn", epochs=args.epochs, seed=args.seed, backend=args.backend,
                                   augment=augmented)
        metrics = digits.train(run, out / name, fsdd=fsdd, verbose=args.verbose)
        recogniser = digits.Recogniser(out / name / "model.npz")
        table.update(conditions(recogniser, f"CNN trained {name}", signals, labels, args.seed))
        summary[name] = {"training_seconds": metrics["training_seconds"], "epochs": args.epochs}
    if args.model:
        saved = load_recogniser(args.model)
        what = "the recommended ensemble" if isinstance(saved, Ensemble) else "the saved model"
        table.update(conditions(saved, f"{what} ({pathlib.Path(args.model).name})", signals, labels, args.seed))
        summary["saved"] = {"path": str(args.model)}
    result = {"conditions": table, "training": summary, "seed": args.seed, "noise": "white",
              "versions": digits.versions()}
    (out / "noise.json").write_text(json.dumps(result, indent=1))
    plot_noise(table, out / "noise.png", "FSDD test recordings with added white noise")
    print(f"wrote {out / 'noise.json'} and {out / 'noise.png'}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
