"""audio.features.presets: what each preset resolves to, and errors that name the option."""

from __future__ import annotations

import numpy as np
import pytest

from audio import features as F
from audio.features.presets import CEPSTRAL_DEFAULTS


def test_mfcc_errors_name_the_option():
    y = np.zeros(1000, np.float32)
    with pytest.raises(ValueError, match="preset must be one of .* got 'kaldi'"):
        F.mfcc(y, 8000, preset="kaldi")
    with pytest.raises(ValueError, match="top_db=60 applies to the dB log of preset 'librosa'"):
        F.mfcc(y, 8000, preset="htk", top_db=60)
    with pytest.raises(ValueError, match="sample_rate must be a positive integer"):
        F.mfcc(y, -8000)
    with pytest.raises(ValueError, match="n_mfcc=40 must be <= n_mels=26"):
        F.mfcc(y, 8000, 40, "htk")
    with pytest.raises(ValueError, match=r"signal must be \(samples,\) or \(batch, samples\)"):
        F.mfcc(np.zeros((2, 2, 100)), 8000)
    with pytest.raises(ValueError, match="signal has zero samples"):
        F.mfcc(np.zeros(0), 8000)
    with pytest.raises(ValueError, match="win_length=300 must be <= n_fft=256"):
        F.mfcc(y, 8000, n_fft=256, win_length=300)


@pytest.mark.parametrize("rate, win, hop", [(8000, 200, 80), (16000, 400, 160)])
def test_htk_preset_is_psf_defaults(rate, win, hop):
    o = F.mfcc_options(rate, 13, "htk")
    assert (o.win_length, o.hop_length, o.frame_length, o.n_fft) == (win, hop, win, 512)
    assert (o.n_mels, o.mel_scale, o.mel_norm, o.bin_rounded) == (26, "htk", None, True)
    assert (o.pre_emphasis, o.window, o.padding, o.log) == (0.97, "rectangular", "end", "natural")
    assert (o.lifter, o.lifter_first_index, o.append_energy) == (22.0, 0, True)
    assert o.top_db is None and o.normalize_power and o.fmax == rate / 2


def test_librosa_preset_is_librosa_defaults_and_overrides_win():
    o = F.mfcc_options(8000, 13, "librosa")
    assert (o.n_fft, o.hop_length, o.win_length, o.frame_length) == (2048, 512, 2048, 2048)
    assert (o.n_mels, o.mel_scale, o.mel_norm, o.window) == (128, "slaney", "slaney", "hann")
    assert (o.top_db, o.log, o.padding, o.normalize_power) == (80.0, "db", "center", False)
    assert (o.lifter, o.lifter_first_index, o.append_energy) == (0.0, 1, False)
    changed = F.mfcc_options(8000, 13, "librosa", n_fft=512, lifter=22.0, append_energy=True)
    assert (changed.n_fft, changed.win_length, changed.lifter) == (512, 512, 22.0)
    assert changed.append_energy and changed.lifter_first_index == 1  # numbering stays


@pytest.mark.parametrize("preset", ["librosa", "htk"])
def test_cepstral_defaults_are_what_the_preset_resolves_to(preset):
    o = F.mfcc_options(8000, 13, preset)
    assert CEPSTRAL_DEFAULTS[preset] == {"lifter": o.lifter,
                                         "lifter_first_index": o.lifter_first_index,
                                         "append_energy": o.append_energy}
