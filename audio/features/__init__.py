"""MFCC features, one stage per function: pre-emphasis, padding, framing, window, power
spectrum, mel filterbank, log, DCT, lifter; plus deltas and CMVN.

Arrays in, arrays out, time-major: a signal is (samples,) or (batch, samples); frames are
(..., frames, frame_length); spectra and features (..., frames, bins). The array module comes
from the input, so a cupy batch runs on the GPU. Two presets reproduce two libraries,
"librosa" and "htk" (python_speech_features); presets.py says what each one sets.

One module per part of the chain, in the order a signal goes through them:

    framing.py          pre_emphasis, pad_signal, frame_signal, window, apply_window, overlap_add
    spectrum.py         power_spectrum
    mel.py              hz_to_mel, mel_to_hz, mel_filterbank (with VTLP warping), log_mel
    cepstrum.py         dct, lifter
    postprocessing.py   deltas, cmvn
    presets.py          MFCCOptions, mfcc_options: a preset and overrides, resolved
    chain.py            mfcc, melspectrogram (enter at a signal or a spectrogram), frames_to_mfcc;
                        log_mel_frames, frames_to_log_mel (the chain stopped before its DCT)
    constants.py        EPS; constant matrices, built and cast once, applied along the last axis

The stages and the chain are importable from here: ``from audio.features import mfcc,
frame_signal``; the knobs and helpers of one module (CPU_BLOCK_BYTES, constant) from it.
"""

from audio.features.cepstrum import dct, lifter
from audio.features.chain import (frames_to_log_mel, frames_to_mfcc, log_mel_frames, melspectrogram, mfcc,
                                  mfcc_from_options, num_frames, power_frames)
from audio.features.constants import EPS
from audio.features.framing import (WINDOWS, apply_window, frame_signal, overlap_add, pad_signal,
                                    padded_length_end, pre_emphasis, window)
from audio.features.mel import hz_to_mel, log_mel, mel_filterbank, mel_to_hz, vtlp_warp
from audio.features.postprocessing import cmvn, deltas
from audio.features.presets import PRESETS, MFCCOptions, mfcc_options
from audio.features.spectrum import power_spectrum

__all__ = [
    "EPS", "MFCCOptions", "PRESETS", "WINDOWS", "apply_window", "cmvn", "dct", "deltas",
    "frame_signal", "frames_to_log_mel", "frames_to_mfcc", "hz_to_mel", "lifter", "log_mel",
    "log_mel_frames", "mel_filterbank", "mel_to_hz", "melspectrogram", "mfcc", "mfcc_from_options",
    "mfcc_options", "num_frames",
    "overlap_add", "pad_signal", "padded_length_end", "power_frames", "power_spectrum", "pre_emphasis",
    "vtlp_warp", "window",
]
