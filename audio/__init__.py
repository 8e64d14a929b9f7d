"""The speech front end of minidl: load audio, compute MFCCs, augment, denoise, stream, FSDD.

    import audio
    signal, rate = audio.load("7_jackson_32.wav")
    features = audio.features.mfcc(signal, rate, preset="htk")     # (frames, 13)

This package never imports minidl; it takes its array module (numpy or cupy) from its input.
"""

from audio.io import AudioError, load
from audio import features  # noqa: E402  (submodules after the names they use)
from audio import augment, datasets, denoise, stream  # noqa: E402

__all__ = ["AudioError", "load", "augment", "datasets", "denoise", "features", "stream"]
