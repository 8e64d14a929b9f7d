"""Where the sound is: leading and trailing silence cut by a frame-energy rule.

audio.connected_digits trims every FSDD take with it before joining takes into utterances;
the same rule can find the ends of an utterance in a stream (endpointing).
"""

from __future__ import annotations

import numpy as np

from audio.features import frame_signal


def trim_silence(signal: np.ndarray, sample_rate: int, top_db: float = 30.0,
                 frame_seconds: float = 0.02, hop_seconds: float = 0.01,
                 margin_seconds: float = 0.02, keep_digital_silence: bool = True) -> np.ndarray:
    """Cut leading and trailing silence by a frame-energy rule (like librosa.effects.trim).

    The rule: cut the signal into frames of ``frame_seconds`` every ``hop_seconds``; a frame is
    *sound* when its mean power is within ``top_db`` dB of the loudest frame's. Keep from the
    start of the first sound frame to the end of the last one, widened by ``margin_seconds`` on
    each side (so a soft onset such as the "f" of "five" is not clipped), within the signal.
    Silence inside the word is kept. A signal shorter than one frame is returned unchanged.

    Args:
        signal: (samples,) float.
        sample_rate: Hz.
        top_db: how far below the peak frame a frame may be and still count as sound.
        frame_seconds, hop_seconds: frame length and step.
        margin_seconds: extra audio kept before the first and after the last sound frame.
        keep_digital_silence: False stops the margin at the first and last non-zero sample:
            exact zeros (a file padded digitally) carry no sound, and a feature frame made only
            of them has the log of nothing for its energy, far from anything a recording
            holds (features trim this way; audio.connected_digits keeps the margin as it is).
    Returns:
        A view of ``signal``, (kept samples,).
    """
    if signal.ndim != 1:
        raise ValueError(f"trim_silence: signal must be (samples,), got shape {signal.shape}")
    if top_db <= 0:
        raise ValueError(f"trim_silence: top_db must be > 0 dB, got {top_db}")
    frame = max(1, int(round(frame_seconds * sample_rate)))
    hop = max(1, int(round(hop_seconds * sample_rate)))
    if len(signal) < frame:
        return signal
    frames = frame_signal(signal, frame, hop)  # (count, frame), frame t starts at t · hop
    power = np.mean(frames.astype(np.float64) ** 2, axis=1)
    # Power ratio to the peak; a silent file (peak 0) keeps everything.
    peak = power.max()
    if peak <= 0:
        return signal
    loud = np.nonzero(power >= peak * 10.0 ** (-top_db / 10.0))[0]
    margin = int(round(margin_seconds * sample_rate))
    begin = max(0, hop * loud[0] - margin)
    end = min(len(signal), hop * loud[-1] + frame + margin)
    if not keep_digital_silence:
        voiced = np.flatnonzero(signal[begin:end])   # not empty: the peak frame holds sound
        begin, end = begin + voiced[0], begin + voiced[-1] + 1
    return signal[begin:end]


__all__ = ["trim_silence"]
