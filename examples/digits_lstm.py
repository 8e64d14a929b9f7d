"""Spoken digits with a two-layer LSTM, trained on the Free Spoken Digit Dataset.

The story, in the order ``train_lstm`` runs it (each step a function in minidl/apps/):

1. data      audio.fsdd.FSDD finds the recordings (--data, $MINIDL_DATA/fsdd, cache,
             download) and splits them: official (takes 0-4 test) or by speaker.
2. features  audio.features.mfcc, HTK preset, 13 coefficients + deltas = 26 per 10 ms frame
             (digits.load_data; the MFCCs are cached on disk after the first run).
3. model     Every frame of every recording is used: batches are padded only to their longest
             member, and Masking turns the padding into a mask, so the LSTMs carry their state
             through it unchanged and no real audio is cut (digits.build_lstm):

    Masking -> Normalization -> LSTM(64, return_sequences) -> Dropout(0.2) -> LSTM(64)
      -> Dropout(0.2) -> Dense(10, softmax)

             The last LSTM's final state summarises the whole utterance; the gate equations
             and their hand-derived backward pass are in minidl.functional.recurrent.
4. normalise the Normalization layer learns the mean and variance of each coefficient over
             every training frame (one global standardisation, not CMVN per utterance).
5. training  Adam, sparse cross-entropy, batches of similar lengths, 10% of the training data
             held out for the curves.
6. result    accuracy, per-class precision and recall, confusion matrix on the test split,
             in metrics.json; model.npz carries the feature settings, so
             `minidl-digits predict runs/digits_lstm/model.npz some.wav` needs nothing else.
7. pictures  confusion.png and training_curves.png, drawn from metrics.json.

    python examples/digits_lstm.py                                # official split
    python examples/digits_lstm.py --split speaker --held-out all # each speaker held out in turn
"""
from __future__ import annotations

import argparse
import sys
import time

import minidl as dl
from minidl.apps import cli, digits
from minidl.apps.features import FeatureSettings


def train_lstm(settings: digits.TrainSettings, out, fsdd=None, verbose: int = 1) -> dict:
    """One run of the story on one split; returns the metrics written to out/metrics.json."""
    dl.backend.use(settings.backend)
    dl.random.seed(settings.seed)   # the initial weights and dropout masks

    # 1-2. Data and features: a list of (frames, 26) arrays per split, and the digits.
    features = FeatureSettings()    # HTK MFCCs + deltas; "global" normalisation, in the model
    start = time.perf_counter()
    train_x, train_y, test_x, test_y, _ = digits.load_data(settings, features, fsdd)
    copies = digits.training_copies(settings, features, fsdd)   # augmented versions, with --augment
    feature_seconds = time.perf_counter() - start

    # 3. Model: any number of frames, so no fixed length (frames is None below).
    model = digits.build_lstm(features.n_features)

    # 4. Normalisation from the training frames only: the test set stays unseen.
    digits.adapt_normalization(model, train_x)

    # 5. Training: Adam on sparse cross-entropy, in digits.PaddedBatches (each padded to its own
    #    longest recording); 10% of the training data held out for the curves.
    start = time.perf_counter()
    history = digits.fit_model("lstm", model, train_x, train_y, settings, None, verbose, copies)
    training_seconds = time.perf_counter() - start

    # 6-7. Result and pictures.
    metrics = digits.write_report(out, model, settings, features, None, history, (train_x, train_y),
                                  (test_x, test_y), training_seconds, feature_seconds)
    digits.plot_report(out, metrics)
    return metrics


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    cli.add_training_options(parser, model="lstm")
    args = parser.parse_args(argv)
    return cli.run_training(args, story="digits_lstm", train=train_lstm)   # once per held-out speaker


if __name__ == "__main__":
    main(sys.argv[1:])
