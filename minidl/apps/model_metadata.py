"""A saved recogniser's metadata, checked before the model in the file is trusted.

Both recognisers (``minidl.apps.digits.Recogniser``, ``minidl.apps.ctc_digits.Transcriber``) keep
what turns a recording into the network's input in the model file's metadata: the task, the
feature settings, and for the isolated digits the model kind, frames and labels. A model file is
untrusted input, so each value is checked where it is read (``load_model(validate_metadata=)``):
a sample rate of 10⁷ Hz, a label holding an ANSI escape or 10⁹ frames would otherwise surface
later as a raw KeyError, a gigabyte allocation or a repainted terminal. Each check raises
ValueError naming the key, the expectation and the value found; ``load_model`` adds the file.
After loading, ``check_model_shapes`` holds the built model to the metadata, so that a model that
loads also predicts.
"""
from __future__ import annotations

import os

import numpy as np

from audio.io import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, printable
from minidl.apps.features import FeatureSettings, signal_features
from minidl.layers.serialization import short_repr
from minidl.saving import refuse

MAX_N_MFCC = 128              # librosa's 128 mel filters: no preset makes more coefficients
MAX_FRAMES = 100_000          # a fixed input length: 1,000 s of 10 ms frames
MAX_LABEL_CHARS = 32
TRIAL_SECONDS = 0.1           # the feature settings are tried on this much of a tone


def is_int(value) -> bool:
    """An int that is not a bool (JSON's true would otherwise count as 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_task(metadata, task: str, what: str, hint: str = "") -> dict:
    """``metadata`` itself, if it is a dict whose "task" is ``task``.

    Raises:
        ValueError: "not <what> (its metadata names task ...)", then ``hint``.
    """
    found = metadata.get("task") if isinstance(metadata, dict) else None
    if found != task:
        raise ValueError(f"not {what} (its metadata names task {short_repr(found, 80)}, expected {task!r})"
                         + (f"; {hint}" if hint else ""))
    return metadata


def feature_settings_from_metadata(values, defaults: FeatureSettings | None = None) -> FeatureSettings:
    """The "features" metadata as FeatureSettings, checked to make features.

    The sample rate must be an integer from audio's MIN_SAMPLE_RATE to MAX_SAMPLE_RATE, n_mfcc an
    integer from 1 to MAX_N_MFCC, delta_order 0, 1 or 2, and the settings must turn a short tone
    into features (which refuses an unknown preset, or more coefficients than mel filters).

    Args:
        values: the metadata's "features" dict.
        defaults: settings for the keys it lacks; None for FeatureSettings' own.
    Raises:
        ValueError: naming the setting that is wrong and the value found.
    """
    if not isinstance(values, dict):
        raise ValueError(f"'features' must be a dict of feature settings, got {short_repr(values, 80)}")
    try:
        settings = FeatureSettings.from_dict({**(defaults.to_dict() if defaults else {}), **values})
    except (TypeError, ValueError) as error:
        raise ValueError(f"'features' are not feature settings: {error}") from None
    rate = settings.sample_rate
    if not is_int(rate) or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise ValueError(f"features.sample_rate must be an integer from {MIN_SAMPLE_RATE} to "
                         f"{MAX_SAMPLE_RATE} Hz, got {short_repr(rate, 40)}")
    if not is_int(settings.n_mfcc) or not 1 <= settings.n_mfcc <= MAX_N_MFCC:
        raise ValueError(f"features.n_mfcc must be an integer from 1 to {MAX_N_MFCC}, "
                         f"got {short_repr(settings.n_mfcc, 40)}")
    if not is_int(settings.delta_order) or settings.delta_order not in (0, 1, 2):
        raise ValueError(f"features.delta_order must be 0, 1 or 2, got {short_repr(settings.delta_order, 40)}")
    t = np.arange(int(rate * TRIAL_SECONDS)) / rate
    try:
        signal_features((0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), settings)
    except (TypeError, ValueError) as error:
        raise ValueError(f"'features' make no features: {error}") from None
    return settings


def check_choice(value, choices: tuple[str, ...], key: str) -> str:
    """``value`` if it is one of ``choices``; else ValueError naming ``key``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {key} {short_repr(value, 80)}; expected one of {', '.join(choices)}")
    return value


def check_frames(frames, required: bool) -> int | None:
    """``frames``: an integer from 1 to MAX_FRAMES, or None where not ``required``."""
    if frames is None and not required:
        return None
    if not (is_int(frames) and 1 <= frames <= MAX_FRAMES):
        raise ValueError(f"frames must be an integer from 1 to {MAX_FRAMES:,}{'' if required else ' or null'}, "
                         f"got {short_repr(frames, 40)}")
    return frames


def check_labels(labels, count: int) -> list[str]:
    """``labels``: a list of ``count`` strings of 1 to MAX_LABEL_CHARS characters, each as
    audio.io.printable leaves it (no control character, ANSI escape or backslash)."""
    if not (isinstance(labels, list) and len(labels) == count and all(
            isinstance(label, str) and 1 <= len(label) <= MAX_LABEL_CHARS and printable(label) == label
            for label in labels)):
        raise ValueError(f"labels must be a list of {count} printable strings of 1 to {MAX_LABEL_CHARS} "
                         f"characters, got {short_repr(labels, 120)}")
    return labels


def check_model_shapes(model, path: str | os.PathLike, input_shape: tuple, output_width: int) -> None:
    """Refuse a loaded model whose input shape, or output width, is not what its metadata implies.

    Args:
        model: the Sequential from load_model.
        path: its file, for the message.
        input_shape: the input shape the metadata implies, None for a free axis.
        output_width: the size of the output's last axis (one score per label or class). Only
            that axis is compared: a free time axis is traced with length 1 when the model is built.
    Raises:
        minidl.saving.ModelFileError: naming the file and both shapes.
    """
    where = repr(os.fspath(path))   # as load_model spells it
    found = model.built_input_shape
    if found is not None and len(found) == len(input_shape) and found[-1] != input_shape[-1]:
        raise refuse(where, f"its features make {input_shape[-1]} features per frame, but the model takes "
                            f"{found[-1]} (input shape {found})")
    if found != input_shape:
        raise refuse(where, f"its metadata implies input shape {input_shape}, the model has {found}")
    output = tuple(model.output_shapes[-1]) if model.output_shapes else found
    if output[-1] != output_width:
        raise refuse(where, f"the model's output shape is {output}, but its metadata implies {output_width} "
                            f"scores on the last axis")
