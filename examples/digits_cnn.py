"""Spoken digits with a convolutional network, trained on the Free Spoken Digit Dataset.

The story, in the order the code runs it (each step a function in minidl/apps/digits.py):

1. data      audio.datasets.FSDD finds the recordings (argument, $MINIDL_DATA/fsdd, cache,
             download) and splits them: official (takes 0-4 test) or by speaker.
2. features  audio.features.mfcc, HTK preset, 13 coefficients + deltas, CMVN per utterance
             (digits.dataset_features; cached on disk after the first run).
3. model     Each recording's MFCCs (plus deltas, normalised per utterance) are padded or cut to one
length that holds at least 98% of the training recordings whole, and read as a one-channel
image of (frames x 26 coefficients):

    Conv2D(32, 3x3, relu) -> MaxPooling2D(2) -> Conv2D(64, 3x3, relu) -> MaxPooling2D(2)
      -> Flatten -> Dense(128, relu) -> Dropout(0.3) -> Dense(10, softmax)

The convolutions find local time-frequency shapes (a formant moving, a burst of noise) wherever
they occur; pooling lets them shift a little.
4. training  Adam, sparse cross-entropy, 10% of the training data held out for the curves
             (digits.fit_model).
5. result    accuracy, per-class precision and recall, confusion matrix on the test split
             (digits.classification_report), written to metrics.json.
6. pictures  confusion.png and training_curves.png; model.npz carries the feature settings,
             so `minidl-digits predict runs/digits_cnn/model.npz some.wav` needs nothing else.

    python examples/digits_cnn.py                                # official split
    python examples/digits_cnn.py --split speaker --held-out all # each speaker held out in turn
"""
from __future__ import annotations

import argparse
import sys

from minidl.apps import digits


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    digits.add_training_options(parser, model_default="cnn")
    args = parser.parse_args(argv)
    args.model = "cnn"
    return digits.run_training(args, story="digits_cnn")


if __name__ == "__main__":
    main(sys.argv[1:])
