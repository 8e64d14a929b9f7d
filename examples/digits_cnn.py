"""Spoken digits with a convolutional network, trained on the Free Spoken Digit Dataset.

The story, in the order ``train_cnn`` runs it (each step a function in minidl/apps/):

1. data      audio.fsdd.FSDD finds the recordings (--data, $MINIDL_DATA/fsdd, cache,
             download) and splits them: official (takes 0-4 test) or by speaker.
2. features  audio.features.mfcc, HTK preset, 13 coefficients + deltas = 26 per 10 ms frame
             (digits.load_data; the MFCCs are cached on disk after the first run).
3. model     Each recording's features are padded or cut to one length that holds at least
             98% of the training recordings whole, and read as a one-channel image of
             (frames x 26 coefficients) by digits.build_cnn:

    Normalization -> Conv2D(32, 3x3, relu) -> MaxPooling2D(2) -> Conv2D(64, 3x3, relu)
      -> MaxPooling2D(2) -> Flatten -> Dense(128, relu) -> Dropout(0.3) -> Dense(10, softmax)

             The convolutions find local time-frequency shapes (a formant moving, a burst of
             noise) wherever they occur; pooling lets them shift a little.
4. normalise the Normalization layer learns the mean and variance of each coefficient over
             every training frame, and keeps them in the model file.
5. training  Adam, sparse cross-entropy, 10% of the training data held out for the curves.
6. result    accuracy, per-class precision and recall, confusion matrix on the test split,
             in metrics.json; model.npz carries the feature settings, so
             `minidl-digits predict runs/digits_cnn/model.npz some.wav` needs nothing else.
7. pictures  confusion.png and training_curves.png, drawn from metrics.json.

    python examples/digits_cnn.py                                # official split
    python examples/digits_cnn.py --split speaker --held-out all # each speaker held out in turn
"""
from __future__ import annotations

import argparse
import sys
import time

import minidl as dl
from minidl.apps import cli, digits
from minidl.apps.features import FeatureSettings


def train_cnn(settings: digits.TrainSettings, out, fsdd=None, verbose: int = 1) -> dict:
    """One run of the story on one split; returns the metrics written to out/metrics.json."""
    dl.backend.use(settings.backend)
    dl.random.seed(settings.seed)   # the initial weights and dropout masks

    # 1-2. Data and features: a list of (frames, 26) arrays per split, and the digits.
    features = FeatureSettings()    # HTK MFCCs + deltas; "global" normalisation, in the model
    start = time.perf_counter()
    train_x, train_y, test_x, test_y, _ = digits.load_data(settings, features, fsdd)
    copies = digits.training_copies(settings, features, fsdd)   # augmented versions, with --augment
    feature_seconds = time.perf_counter() - start

    # 3. Model: a fixed number of frames, so the features are an image.
    frames = digits.coverage_length([len(f) for f in train_x])
    model = digits.build_cnn(frames, features.n_features)

    # 4. Normalisation from the training frames only: the test set stays unseen.
    digits.adapt_normalization(model, train_x)

    # 5. Training: Adam on sparse cross-entropy, 10% of the training data held out for the curves.
    start = time.perf_counter()
    history = digits.fit_model("cnn", model, train_x, train_y, settings, frames, verbose, copies)
    training_seconds = time.perf_counter() - start

    # 6-7. Result and pictures.
    metrics = digits.write_report(out, model, settings, features, frames, history, (train_x, train_y),
                                  (test_x, test_y), training_seconds, feature_seconds)
    digits.plot_report(out, metrics)
    return metrics


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    cli.add_training_options(parser, model="cnn")
    args = parser.parse_args(argv)
    return cli.run_training(args, story="digits_cnn", train=train_cnn)   # once per held-out speaker


if __name__ == "__main__":
    main(sys.argv[1:])
