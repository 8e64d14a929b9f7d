"""Spoken digits with a two-layer LSTM, trained on the Free Spoken Digit Dataset.

The story, in the order the code runs it (each step a function in minidl/apps/digits.py):

1. data      audio.datasets.FSDD finds the recordings (argument, $MINIDL_DATA/fsdd, cache,
             download) and splits them: official (takes 0-4 test) or by speaker.
2. features  audio.features.mfcc, HTK preset, 13 coefficients + deltas, CMVN per utterance
             (digits.dataset_features; cached on disk after the first run).
3. model     Every frame of every recording is used: batches are padded only to their longest member,
and Masking turns the padding into a mask, so the LSTMs carry their state through it unchanged
and no real audio is cut:

    Masking -> LSTM(64, return_sequences) -> Dropout -> LSTM(64) -> Dropout -> Dense(10, softmax)

The last LSTM's final state summarises the whole utterance; see minidl/functional/recurrent.py
for the gate equations and their hand-derived backward pass.
4. training  Adam, sparse cross-entropy, 10% of the training data held out for the curves
             (digits.fit_model).
5. result    accuracy, per-class precision and recall, confusion matrix on the test split
             (digits.classification_report), written to metrics.json.
6. pictures  confusion.png and training_curves.png; model.npz carries the feature settings,
             so `minidl-digits predict runs/digits_lstm/model.npz some.wav` needs nothing else.

    python examples/digits_lstm.py                                # official split
    python examples/digits_lstm.py --split speaker --held-out all # each speaker held out in turn
"""
from __future__ import annotations

import argparse
import sys

from minidl.apps import digits


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    digits.add_training_options(parser, model_default="lstm")
    args = parser.parse_args(argv)
    args.model = "lstm"
    return digits.run_training(args, story="digits_lstm")


if __name__ == "__main__":
    main(sys.argv[1:])
