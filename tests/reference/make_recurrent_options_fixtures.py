"""Regenerate tests/reference/fixtures/recurrent_options.npz from Keras 3 (torch backend).

    KERAS_BACKEND=torch python -m tests.reference.make_recurrent_options_fixtures

Two groups of cases, for the recurrent layers' options beyond the defaults:

* dropout: a Keras SimpleRNN, LSTM, GRU or GRU(reset_after=False) with ``dropout`` and/or
  ``recurrent_dropout``, called with training=True after the dropout masks of ``draw_masks``
  were injected into its cell (Keras draws masks only while that cache is empty), so minidl can
  be given the very same masks. Stored under "<case>/": x, mask (if any), the masks, the
  weights w0, w1, ... and the outputs y0, y1, ...
* stateful: a stateful Keras layer called on four chunks in turn, reset before the third;
  stored under "stateful_<layer>/": the chunks c0..c3, the mask of the chunks that have one
  (m1, m2), the weights, and after every call k its outputs y<k>_<j> and states s<k>_<j>.

The tests compare minidl with these arrays, so Keras need not be installed; when it is, they
also call ``keras_dropout_run`` and ``keras_stateful_run`` live.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).parent / "fixtures"
FILE = FIXTURES / "recurrent_options.npz"
BATCH, STEPS, FEATURES, UNITS = 3, 5, 4, 3
GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}

KINDS = {"simple_rnn": ("SimpleRNN", {}), "lstm": ("LSTM", {}), "gru": ("GRU", {}),
         "gru_reset_before": ("GRU", {"reset_after": False})}
OPTIONS = {  # id: (constructor arguments, masked)
    "both": (dict(dropout=0.3, recurrent_dropout=0.4), False),
    "recurrent_only": (dict(recurrent_dropout=0.4, return_sequences=True), False),
    "input_only": (dict(dropout=0.3, return_sequences=True), False),
    "both-masked-backwards": (dict(dropout=0.3, recurrent_dropout=0.4, return_sequences=True,
                                   go_backwards=True, return_state=True), True),
}
DROPOUT_CASES = {f"{kind}-{option}": (name, {**extra, **args}, masked)
                 for kind, (name, extra) in KINDS.items() for option, (args, masked) in OPTIONS.items()}
STATEFUL_ARGS = dict(units=UNITS, return_sequences=True, return_state=True, stateful=True)
STATEFUL_CALLS = ((0, None, False), (1, "ragged", False), (0, "ragged", True), (1, None, False))  # chunk, mask, reset
MASK_KEYS = ("shared_input_mask", "input_masks", "recurrent_masks")


def ragged(steps: int = STEPS) -> np.ndarray:
    """A right-padded mask (batch, steps): lengths steps, 3 and 1."""
    return np.arange(steps)[None, :] < np.array([steps, 3, 1])[:, None]


def draw_masks(name: str, args: dict, seed: int = 0) -> dict:
    """Masks as Keras draws them for these arguments (0 or 1/(1 - rate)), in minidl's layout:
    dropout alone {"shared_input_mask": (batch, 1, features)}; with recurrent_dropout
    {"recurrent_masks": (gates, batch, units)} and, with dropout, "input_masks" (gates, batch, features)."""
    rng = np.random.default_rng(seed)

    def draw(shape, rate):
        return ((rng.random(shape) >= rate) / (1 - rate)).astype(np.float32)
    dropout, recurrent_dropout = args.get("dropout", 0.0), args.get("recurrent_dropout", 0.0)
    if not recurrent_dropout:
        return {"shared_input_mask": draw((BATCH, 1, FEATURES), dropout)}
    masks = {"recurrent_masks": draw((GATES[name], BATCH, UNITS), recurrent_dropout)}
    if dropout:
        masks["input_masks"] = draw((GATES[name], BATCH, FEATURES), dropout)
    return masks


def dropout_inputs(case: str, seed: int = 3):
    """x (float32), the mask (or None) and the dropout masks of a dropout case."""
    name, args, masked = DROPOUT_CASES[case]
    x = np.random.default_rng(seed).normal(size=(BATCH, STEPS, FEATURES)).astype(np.float32)
    return x, (ragged() if masked else None), draw_masks(name, args)


def _inject(layer, masks: dict) -> None:
    """Set the Keras cell's cached masks, which its next call uses instead of drawing."""
    import keras  # noqa: PLC0415 (only when generating or comparing live)
    cell, to_tensor = layer.cell, keras.ops.convert_to_tensor
    if "shared_input_mask" in masks:
        cell._dropout_mask = to_tensor(masks["shared_input_mask"][:, 0])
        return
    per_gate = getattr(cell, "dropout_mask_count", None) is not None  # SimpleRNN: one mask, no list
    for attribute, key in (("_dropout_mask", "input_masks"), ("_recurrent_dropout_mask", "recurrent_masks")):
        if key in masks:
            setattr(cell, attribute, [to_tensor(m) for m in masks[key]] if per_gate else to_tensor(masks[key][0]))


def _random_weights(layer, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = [(0.5 * rng.normal(size=w.shape)).astype(np.float32) for w in layer.get_weights()]
    layer.set_weights(weights)
    return weights


def _numpy(outputs) -> list[np.ndarray]:
    import keras  # noqa: PLC0415
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    return [keras.ops.convert_to_numpy(y) for y in outputs]


def keras_dropout_run(case: str, x, mask, masks: dict, seed: int = 4):
    """The Keras layer of a dropout case with random weights, called in training with ``masks``
    injected: (weights, outputs)."""
    import keras  # noqa: PLC0415
    name, args, _ = DROPOUT_CASES[case]
    layer = getattr(keras.layers, name)(UNITS, **args)
    layer(x)
    weights = _random_weights(layer, seed)
    _inject(layer, masks)
    return weights, _numpy(layer(x, training=True, **({} if mask is None else {"mask": mask})))


def stateful_inputs(seed: int = 8):
    """The two chunks of (batch, steps, features) a stateful layer is fed, and their mask."""
    x = np.random.default_rng(seed).normal(size=(BATCH, 2 * STEPS, FEATURES)).astype(np.float32)
    mask = ragged()
    mask[2] = False  # a sample with no valid step: its carried state passes through
    return [x[:, :STEPS], x[:, STEPS:]], mask


def keras_stateful_run(name: str, chunks, mask, seed: int = 9):
    """A stateful Keras layer fed STATEFUL_CALLS: (weights, [(outputs, states) after each call])."""
    import keras  # noqa: PLC0415
    layer = getattr(keras.layers, name)(**STATEFUL_ARGS)
    layer(chunks[0])
    weights = _random_weights(layer, seed)
    layer.reset_state()
    results = []
    for chunk, masked, reset in STATEFUL_CALLS:
        if reset:
            layer.reset_state()
        outputs = _numpy(layer(chunks[chunk], **({"mask": mask} if masked else {})))
        results.append((outputs, _numpy(layer.states)))
    return weights, results


def main() -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    FIXTURES.mkdir(exist_ok=True)
    arrays = {}
    for case in DROPOUT_CASES:
        x, mask, masks = dropout_inputs(case)
        weights, outputs = keras_dropout_run(case, x, mask, masks)
        arrays[f"{case}/x"] = x
        if mask is not None:
            arrays[f"{case}/mask"] = mask
        arrays.update({f"{case}/{key}": value for key, value in masks.items()})
        arrays.update({f"{case}/w{k}": w for k, w in enumerate(weights)})
        arrays.update({f"{case}/y{k}": y for k, y in enumerate(outputs)})
    for name in GATES:
        chunks, mask = stateful_inputs()
        weights, results = keras_stateful_run(name, chunks, mask)
        prefix = f"stateful_{name}"
        arrays.update({f"{prefix}/c{k}": c for k, c in enumerate(chunks)})
        arrays[f"{prefix}/mask"] = mask
        arrays.update({f"{prefix}/w{k}": w for k, w in enumerate(weights)})
        for call, (outputs, states) in enumerate(results):
            arrays.update({f"{prefix}/y{call}_{j}": y for j, y in enumerate(outputs)})
            arrays.update({f"{prefix}/s{call}_{j}": s for j, s in enumerate(states)})
    np.savez_compressed(FILE, **arrays)
    print(f"wrote {FILE} ({len(DROPOUT_CASES)} dropout cases, {len(GATES)} stateful)")


if __name__ == "__main__":
    main()
