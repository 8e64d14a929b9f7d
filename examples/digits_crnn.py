"""Spoken digits with a convolutional-recurrent network, trained on the Free Spoken Digit Dataset.

The story, in the order the code runs it (each step a function in minidl/apps/digits.py):

1. data      audio.datasets.FSDD finds the recordings (argument, $MINIDL_DATA/fsdd, cache,
             download) and splits them: official (takes 0-4 test) or by speaker.
2. features  audio.features.mfcc, HTK preset, 13 coefficients + deltas, CMVN per utterance
             (digits.dataset_features; cached on disk after the first run).
3. model     The model people draw for speech: a convolution over time finds local patterns in a few
frames, a bidirectional GRU reads the whole sequence both ways:

    Masking -> Conv1D(64, 5, 'same', relu; passes the mask on) -> Bidirectional(GRU(64))
      -> Dropout -> Dense(10, softmax)
4. training  Adam, sparse cross-entropy, 10% of the training data held out for the curves
             (digits.fit_model).
5. result    accuracy, per-class precision and recall, confusion matrix on the test split
             (digits.classification_report), written to metrics.json.
6. pictures  confusion.png and training_curves.png; model.npz carries the feature settings,
             so `minidl-digits predict runs/digits_crnn/model.npz some.wav` needs nothing else.

    python examples/digits_crnn.py                                # official split
    python examples/digits_crnn.py --split speaker --held-out all # each speaker held out in turn
"""
from __future__ import annotations

import argparse
import sys

from minidl.apps import digits


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    digits.add_training_options(parser, model_default="crnn")
    args = parser.parse_args(argv)
    args.model = "crnn"
    return digits.run_training(args, story="digits_crnn")


if __name__ == "__main__":
    main(sys.argv[1:])
