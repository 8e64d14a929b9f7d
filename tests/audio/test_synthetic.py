"""audio.synthetic: the voice catalogue, the engines' command lines, the cached WAV files.

The engines themselves run only where they are installed (``make voices``); the rest stands a
fake engine in for them, which writes a tone where espeak-ng would write a word.
"""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import soundfile

import audio
from audio import synthetic
from audio.synthetic import SyntheticVoice, catalogue, synthesise, synthetic_digits


def fake_engine(calls: list):
    """A subprocess.run stand-in that writes 0.3 s of a tone to the command's output path."""
    def run(command, **kwargs):
        calls.append(command)
        flag = "-w" if command[0] == "espeak-ng" else "-o"
        path = command[command.index(flag) + 1]
        t = np.arange(2400) / 8000
        soundfile.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000)
        return subprocess.CompletedProcess(command, 0, "", "")
    return run


@pytest.fixture
def engines_present(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")


def test_the_catalogue_is_fixed_mixed_and_its_names_unique():
    voices = catalogue()
    assert voices == catalogue()                       # the same order every call
    assert catalogue(seed=1) != voices                 # another seed, other rates, pitches, order
    assert len({v.name for v in voices}) == len(voices)
    assert len({v.voice.split("+")[0] for v in voices[:30]}) >= 5   # the first few span accents
    espeak = [v for v in voices if v.engine == "espeak-ng"]
    assert all(130 <= v.rate <= 210 and 25 <= v.pitch <= 75 for v in espeak)
    assert len({v.voice.split("+")[0] for v in espeak}) == len(synthetic.ESPEAK_ACCENTS)


def test_a_voice_keeps_its_rate_and_pitch_whatever_else_is_listed(monkeypatch):
    everything = {v.voice: v for v in catalogue()}
    monkeypatch.setattr(synthetic, "ESPEAK_VARIANTS", ("f3", "klatt"))
    fewer = catalogue()
    assert len(fewer) == 2 * len(synthetic.ESPEAK_ACCENTS) + 3 * len(synthetic.FLITE_VOICES)
    assert all(everything[v.voice] == v for v in fewer if v.engine == "espeak-ng")
    names = [v.name for v in catalogue()]
    assert all("_" not in n and "+" not in n and "/" not in n for n in names)  # FSDD-style file names


def test_command_lines_say_the_word_without_a_shell():
    espeak = SyntheticVoice("espeak-ng", "en-gb+f3", 150, 40).command("seven", "/tmp/x.wav")
    assert espeak == ["espeak-ng", "-v", "en-gb+f3", "-s", "150", "-p", "40", "-w", "/tmp/x.wav", "seven"]
    flite = SyntheticVoice("flite", "slt", 120, 180).command("two", "/tmp/y.wav")
    assert flite[:3] == ["flite", "-voice", "slt"] and "duration_stretch=1.20" in flite
    assert "int_f0_target_mean=180" in flite and flite[-4:] == ["-t", "two", "-o", "/tmp/y.wav"]


def test_an_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="engine must be one of espeak-ng, flite, got 'say'"):
        SyntheticVoice("say", "alex", 150, 50)


def test_a_missing_engine_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert synthetic.missing_engines() == ["espeak-ng", "flite"]
    with pytest.raises(RuntimeError, match=r"espeak-ng is not installed; run `make voices`"):
        synthesise(SyntheticVoice("espeak-ng", "en-us+m1", 150, 50), "one", tmp_path / "1.wav")


def test_a_failing_engine_leaves_no_file_and_says_why(monkeypatch, engines_present, tmp_path):
    def fails(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, "", "voice not found")
    monkeypatch.setattr(subprocess, "run", fails)
    with pytest.raises(RuntimeError, match="could not say 'one' in voice 'en-us\\+zz': voice not found"):
        synthesise(SyntheticVoice("espeak-ng", "en-us+zz", 150, 50), "one", tmp_path / "1.wav")
    assert list(tmp_path.iterdir()) == []


def test_digits_are_synthesised_once_and_read_back_as_recordings(monkeypatch, engines_present, tmp_path):
    calls = []
    monkeypatch.setattr(subprocess, "run", fake_engine(calls))
    recordings = synthetic_digits(3, tmp_path, progress=False)
    assert len(recordings) == 30 and len(calls) == 30
    assert [r.digit for r in recordings] == list(range(10)) * 3
    voices = catalogue()[:3]
    assert [r.speaker for r in recordings[::10]] == [v.name for v in voices]
    first = recordings[0]
    assert first.name == f"0_{voices[0].name}_0.wav" and first.take == 0
    assert "zero" in calls[0] and "nine" in calls[9]   # digit d is said as its word
    signal, rate = audio.load(first.path, sample_rate=8000)
    assert rate == 8000 and len(signal) == 2400
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temporary left
    assert synthetic_digits(3, tmp_path, progress=False) == recordings
    assert len(calls) == 30                                                 # nothing made twice
    synthetic_digits(4, tmp_path, progress=False)
    assert len(calls) == 40                                                 # only the new voice


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, 10_000])
def test_the_number_of_voices_is_checked(bad, tmp_path):
    with pytest.raises(ValueError, match="n_voices must be a whole number from 1 to"):
        synthetic_digits(bad, tmp_path)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (make voices)")
def test_espeak_ng_says_a_digit_in_under_two_seconds_of_audible_sound(tmp_path):
    path = synthesise(SyntheticVoice("espeak-ng", "en-gb-scotland+f3", 160, 45), "seven", tmp_path / "7.wav")
    signal, _ = audio.load(path, sample_rate=8000)
    assert 0.2 < len(signal) / 8000 < 2.0
    assert np.sqrt(np.mean(signal ** 2)) > 0.01


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite is not installed (make voices)")
def test_flite_says_a_digit_at_the_pace_asked(tmp_path):
    slow = synthesise(SyntheticVoice("flite", "slt", 150, 180), "three", tmp_path / "slow.wav")
    fast = synthesise(SyntheticVoice("flite", "slt", 80, 180), "three", tmp_path / "fast.wav")
    assert len(audio.load(slow, sample_rate=8000)[0]) > 1.4 * len(audio.load(fast, sample_rate=8000)[0])
