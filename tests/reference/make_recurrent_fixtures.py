"""Regenerate tests/reference/fixtures/recurrent_*.npz from Keras 3 (torch backend).

    KERAS_BACKEND=torch python -m tests.reference.make_recurrent_fixtures [file ...]

Each case builds one Keras recurrent layer (SimpleRNN, LSTM, GRU; alone, behind Masking, or
inside Bidirectional) from CASES, gives it random weights (biases included, so they are
tested), runs it on a random float32 input with the case's mask and initial state, and stores
under "<case>/...": x, mask (when there is one), the initial states s0, s1, ..., the weights
w0, w1, ... (Keras' order) and the outputs y0, y1, ... (one per returned tensor). The tests build
the minidl layer from the same CASES entry, load w0, w1, ... with set_weights and compare, so
Keras need not be installed to run them; when it is, the tests also call ``keras_run`` live.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).parent / "fixtures"
SHAPE = (3, 6, 4)  # batch, steps, features
UNITS = 5


def _cases(layer: str, extra: dict) -> dict:
    """The configurations every recurrent layer is checked in."""
    return {
        "last": dict(layer=layer, args=dict(units=UNITS, **extra)),
        "sequences": dict(layer=layer, args=dict(units=UNITS, return_sequences=True, **extra)),
        "backwards_state": dict(layer=layer, args=dict(units=UNITS, return_sequences=True, return_state=True,
                                                       go_backwards=True, **extra)),
        "masked_sequences": dict(layer=layer, args=dict(units=UNITS, return_sequences=True, **extra),
                                 mask="ragged"),
        "masked_zero_output": dict(layer=layer, args=dict(units=UNITS, return_sequences=True,
                                                          zero_output_for_mask=True, **extra), mask="holes"),
        "masked_backwards_state": dict(layer=layer, args=dict(units=UNITS, return_state=True, go_backwards=True,
                                                              **extra), mask="ragged"),
        "masked_backwards_sequences": dict(layer=layer, args=dict(units=UNITS, return_sequences=True,
                                                                  go_backwards=True, **extra), mask="holes"),
        "initial_state": dict(layer=layer, args=dict(units=UNITS, return_sequences=True, return_state=True,
                                                     **extra), initial_state=True, mask="ragged"),
        "masking_layer": dict(layer=layer, args=dict(units=UNITS, return_sequences=True, **extra), masking=True),
        "batch1_length1": dict(layer=layer, args=dict(units=UNITS, return_state=True, **extra), shape=(1, 1, 4)),
        "no_bias": dict(layer=layer, args=dict(units=UNITS, use_bias=False, return_sequences=True, **extra),
                        mask="ragged"),
    }


CASES: dict[str, dict[str, dict]] = {
    "recurrent_simple_rnn": {**_cases("SimpleRNN", {}),
                             "relu": dict(layer="SimpleRNN", args=dict(units=UNITS, activation="relu"))},
    "recurrent_lstm": _cases("LSTM", {}),
    "recurrent_gru": _cases("GRU", {}),
    "recurrent_gru_reset_before": _cases("GRU", {"reset_after": False}),
    "recurrent_bidirectional": {
        **{f"{layer.lower()}_{mode}": dict(layer=layer, args=dict(units=UNITS, return_sequences=True),
                                           merge_mode=mode, mask="ragged")
           for layer in ("LSTM", "GRU") for mode in ("concat", "sum", "mul", "ave")},
        "simple_rnn_concat_last": dict(layer="SimpleRNN", args=dict(units=UNITS), merge_mode="concat",
                                       mask="ragged"),
        "lstm_concat_state": dict(layer="LSTM", args=dict(units=UNITS, return_sequences=True, return_state=True),
                                  merge_mode="concat", mask="holes"),
        "gru_none_last": dict(layer="GRU", args=dict(units=UNITS), merge_mode=None),
        "lstm_ave_masking_layer": dict(layer="LSTM", args=dict(units=UNITS, return_sequences=True),
                                       merge_mode="ave", masking=True),
    },
}

STATE_COUNT = {"SimpleRNN": 1, "LSTM": 2, "GRU": 1}


def case_inputs(case: dict, seed: int = 0):
    """x (float32), mask (bool or None) and initial states (list of float32 or None) of a case."""
    rng = np.random.default_rng(seed)
    shape = case.get("shape", SHAPE)
    x = rng.normal(size=shape).astype(np.float32)
    batch, steps = shape[:2]
    mask = None
    if case.get("mask") or case.get("masking"):
        lengths = np.array([steps, max(steps // 2, 1), 1][:batch])
        mask = np.arange(steps)[None, :] < lengths[:, None]
        if case.get("mask") == "holes":
            mask[0, 1] = False
    if case.get("masking"):  # padding the Masking layer finds, instead of a mask argument
        x[~mask] = 0.0
    states = None
    if case.get("initial_state"):
        count = STATE_COUNT[case["layer"]] * (2 if "merge_mode" in case else 1)
        states = [rng.normal(size=(batch, UNITS)).astype(np.float32) for _ in range(count)]
    return x, (None if case.get("masking") else mask), states


def keras_run(case: dict, x: np.ndarray, mask, states, seed: int = 0):
    """Build the Keras layer of ``case``, give it random weights; return (weights, outputs)."""
    import keras  # noqa: PLC0415 (only when generating or comparing live)

    layer = getattr(keras.layers, case["layer"])(**case["args"])
    if "merge_mode" in case:
        layer = keras.layers.Bidirectional(layer, merge_mode=case["merge_mode"])
    kwargs = {}
    if mask is not None:
        kwargs["mask"] = mask
    if states is not None:
        kwargs["initial_state"] = list(states)
    inputs = x
    if case.get("masking"):
        inputs = keras.layers.Masking(0.0)(x)
    layer(inputs, **kwargs)  # build
    rng = np.random.default_rng(seed + 1)
    weights = [(0.5 * rng.normal(size=w.shape)).astype(np.float32) for w in layer.get_weights()]
    layer.set_weights(weights)
    outputs = layer(inputs, **kwargs)
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    return weights, [keras.ops.convert_to_numpy(y) for y in outputs]


def main(files=None) -> None:
    """Write the fixture files named in ``files`` (all of CASES by default), e.g.
    ``python -m tests.reference.make_recurrent_fixtures recurrent_gru_reset_before``."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    FIXTURES.mkdir(exist_ok=True)
    for file, cases in CASES.items():
        if files and file not in files:
            continue
        arrays = {}
        for name, case in cases.items():
            x, mask, states = case_inputs(case)
            weights, outputs = keras_run(case, x, mask, states)
            arrays[f"{name}/x"] = x
            if mask is not None:
                arrays[f"{name}/mask"] = mask
            for k, s in enumerate(states or []):
                arrays[f"{name}/s{k}"] = s
            for k, w in enumerate(weights):
                arrays[f"{name}/w{k}"] = w
            for k, y in enumerate(outputs):
                arrays[f"{name}/y{k}"] = y
        np.savez_compressed(FIXTURES / f"{file}.npz", **arrays)
        print(f"wrote {FIXTURES / file}.npz ({len(cases)} cases)")


if __name__ == "__main__":
    import sys
    main(sys.argv[1:])
