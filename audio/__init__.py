"""The speech front end of minidl: load audio, compute MFCCs, augment, denoise, stream, FSDD.

    import audio
    signal, rate = audio.load("7_jackson_32.wav")
    features = audio.features.mfcc(signal, rate, preset="htk")     # (frames, 13)

This package never imports minidl; it takes its array module (numpy or cupy) from its input.
Its modules, each importing only those above it in this list:

    backend             the array module of an input
    io                  load (WAV, FLAC, OGG), AudioError
    features/           the MFCC chain, one stage per function, and its presets
    augment, denoise, stream, silence
    cache               the feature cache: cache root, content keys, atomic stacked-npz store
    fsdd                the Free Spoken Digit Dataset: locate, download, verify, split
    connected_digits    utterances of several digits, built from FSDD takes
"""

from audio.io import AudioError, load
from audio import features  # noqa: E402  (submodules after the names they use)
from audio import augment, denoise, silence, stream  # noqa: E402
from audio import cache, fsdd  # noqa: E402
from audio import connected_digits  # noqa: E402

__all__ = ["AudioError", "load", "augment", "cache", "connected_digits", "denoise",
           "features", "fsdd", "silence", "stream"]
