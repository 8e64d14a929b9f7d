"""audio.connected_digits: plan from a seed, split respected, trimming, noise, feature cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from audio import augment, connected_digits
from audio.connected_digits import DITHER, ConnectedDigits
from audio.fsdd import FSDD
from tests.audio._helpers import fsdd_recordings

RATE = 8000
SPEAKERS = ("ann", "bob")
TAKES = (0, 1, 5, 6)
LEAD, TONE, TAIL = 800, 1600, 1200   # samples of silence, tone, silence in each fake file


def write_tone_fsdd(folder: Path, speakers=SPEAKERS, takes=TAKES) -> Path:
    """A fake FSDD: digit d is a tone of 300 + 150 d Hz between silences, per speaker and take."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(TONE) / RATE
    for s, speaker in enumerate(speakers):
        for digit in range(10):
            for take in takes:
                tone = 0.3 * np.sin(2 * np.pi * (300 + 150 * digit + 20 * s) * t)
                signal = np.concatenate([np.zeros(LEAD), tone, np.zeros(TAIL)])
                signal += 1e-4 * rng.standard_normal(len(signal))
                soundfile.write(folder / f"{digit}_{speaker}_{take}.wav", signal, RATE,
                                subtype="PCM_16")
    return folder


@pytest.fixture()
def fake(tmp_path):
    return FSDD(write_tone_fsdd(tmp_path / "fsdd" / "recordings"))


def test_plan_is_fixed_by_the_seed(fake):
    first = ConnectedDigits(fsdd=fake, num_utterances=12, seed=3)
    again = ConnectedDigits(fsdd=fake, num_utterances=12, seed=3)
    other = ConnectedDigits(fsdd=fake, num_utterances=12, seed=4)
    assert first.utterances == again.utterances
    assert first.transcripts() != other.transcripts()
    np.testing.assert_array_equal(first[5][0], again[5][0])
    # utterance i does not depend on how many follow it
    longer = ConnectedDigits(fsdd=fake, num_utterances=20, seed=3)
    assert longer.utterances[:12] == first.utterances
    np.testing.assert_array_equal(longer.signal(7), first.signal(7))


def test_utterances_follow_the_plan(fake):
    data = ConnectedDigits(fsdd=fake, num_utterances=30, seed=0, gap_seconds=(0.05, 0.25))
    lengths = set()
    for i, plan in enumerate(data.utterances):
        assert 2 <= len(plan.transcript) <= 7 and plan.transcript.isdigit()
        lengths.add(len(plan.transcript))
        assert plan.speaker == SPEAKERS[i % 2]                          # round robin
        assert len(plan.recordings) == len(plan.transcript)
        assert len(plan.gaps) == len(plan.transcript) + 1
        assert all(400 <= g <= 2000 for g in plan.gaps)                 # 50-250 ms at 8 kHz
        for name, digit in zip(plan.recordings, plan.transcript):
            d, speaker, _ = name[:-4].split("_")
            assert d == digit and speaker == plan.speaker               # one speaker each
        signal, transcript = data[i]
        assert transcript == plan.transcript and signal.dtype == np.float32
        speech = sum(len(data.recording(name)) for name in plan.recordings)
        assert len(signal) == speech + sum(plan.gaps)
    assert len(lengths) > 3


@pytest.mark.parametrize("subset, takes", [("test", {0, 1}), ("train", {5, 6})])
def test_official_split_is_respected(fake, subset, takes):
    data = ConnectedDigits(fsdd=fake, subset=subset, num_utterances=40, seed=1)
    used = {int(name[:-4].split("_")[2]) for u in data.utterances for name in u.recordings}
    assert used == takes


def test_speaker_split_and_speaker_choice(fake):
    held = ConnectedDigits(fsdd=fake, subset="test", split="speaker", held_out="bob",
                           num_utterances=5)
    assert held.speakers == ["bob"] and {u.speaker for u in held.utterances} == {"bob"}
    rest = ConnectedDigits(fsdd=fake, subset="train", split="speaker", held_out="bob",
                           num_utterances=5)
    assert rest.speakers == ["ann"]
    only = ConnectedDigits(fsdd=fake, num_utterances=4, speakers=["bob"])
    assert {u.speaker for u in only.utterances} == {"bob"}


def test_recordings_are_trimmed_to_the_tone(fake):
    data = ConnectedDigits(fsdd=fake, num_utterances=1)
    name = data.utterances[0].recordings[0]
    trimmed = data.recording(name)
    margin = int(0.02 * RATE)
    # the tone, plus at most the 20 ms margin and one 10 ms hop of slack on each side
    assert TONE <= len(trimmed) <= TONE + 2 * (margin + 80 + 160)
    whole = ConnectedDigits(fsdd=fake, num_utterances=1, top_db=None)
    assert len(whole.recording(name)) == LEAD + TONE + TAIL


def test_noise_option_changes_only_the_noise(fake):
    clean = ConnectedDigits(fsdd=fake, num_utterances=3, seed=2)
    noisy = ConnectedDigits(fsdd=fake, num_utterances=3, seed=2, snr_db=5.0)
    assert clean.utterances == noisy.utterances
    difference = noisy.signal(1).astype(np.float64) - clean.signal(1)
    snr = 10 * np.log10(np.mean(clean.signal(1).astype(np.float64) ** 2)
                        / np.mean(difference ** 2))
    assert abs(snr - 5.0) < 0.5


def test_signal_is_the_documented_recipe(fake):
    data = ConnectedDigits(fsdd=fake, num_utterances=4, seed=5, snr_db=10.0)
    for i, plan in enumerate(data.utterances):
        pieces = [np.zeros(plan.gaps[0], np.float32)]
        for name, gap in zip(plan.recordings, plan.gaps[1:]):
            pieces += [data.recording(name), np.zeros(gap, np.float32)]
        signal = np.concatenate(pieces)
        rng = np.random.default_rng([5, i])
        signal = signal + (DITHER * rng.standard_normal(len(signal))).astype(np.float32)
        signal = augment.add_noise(signal, 10.0, rng=rng, exact=False)  # the expected level
        np.testing.assert_array_equal(data.signal(i), np.clip(signal, -1.0, 1.0))


def test_features_are_cached_outside_the_data_folder(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDL_CACHE", str(tmp_path / "cache"))
    before = sorted(p.name for p in fake.folder.iterdir())
    data = ConnectedDigits(fsdd=fake, num_utterances=6, seed=0)
    features = data.features(progress=False)
    files = list((tmp_path / "cache" / "connected_digits").glob("connected-htk-*.npz"))
    assert len(files) == 1 and sorted(p.name for p in fake.folder.iterdir()) == before
    assert [f.shape[1] for f in features] == [13] * 6
    assert all(f.dtype == np.float32 for f in features)
    np.testing.assert_allclose(features[2], connected_digits.mfcc_from_options(
        data.signal(2), connected_digits.mfcc_options(RATE, 13, "htk")), rtol=1e-6)

    def refuse(*args, **kwargs):
        raise AssertionError("recomputed instead of loading the cache")

    monkeypatch.setattr(connected_digits, "mfcc_from_options", refuse)
    loaded = ConnectedDigits(fsdd=fake, num_utterances=6, seed=0).features(progress=False)
    for a, b in zip(features, loaded):
        np.testing.assert_array_equal(a, b)
    with np.load(files[0], allow_pickle=False) as stored:
        assert list(stored["transcripts"]) == data.transcripts()
    # another parameter set is another file
    monkeypatch.undo()
    monkeypatch.setenv("MINIDL_CACHE", str(tmp_path / "cache"))
    ConnectedDigits(fsdd=fake, num_utterances=6, seed=1).features(progress=False)
    assert len(list((tmp_path / "cache" / "connected_digits").glob("*.npz"))) == 2


def test_bad_arguments_say_what_is_wrong(fake):
    with pytest.raises(ValueError, match="subset must be 'train' or 'test', got 'dev'"):
        ConnectedDigits(fsdd=fake, subset="dev")
    with pytest.raises(ValueError, match="min_digits=5, max_digits=3"):
        ConnectedDigits(fsdd=fake, min_digits=5, max_digits=3)
    with pytest.raises(ValueError, match="num_utterances must be a positive int"):
        ConnectedDigits(fsdd=fake, num_utterances=0)
    with pytest.raises(ValueError, match="gap_seconds"):
        ConnectedDigits(fsdd=fake, gap_seconds=(0.3, 0.1))
    with pytest.raises(ValueError, match=r"speakers \['zed'\] have no train recordings"):
        ConnectedDigits(fsdd=fake, speakers=["zed"])
    with pytest.raises(IndexError, match="index 3 out of range for 3"):
        ConnectedDigits(fsdd=fake, num_utterances=3)[3]


def test_missing_digit_is_reported(tmp_path):
    folder = write_tone_fsdd(tmp_path / "fsdd", speakers=("ann",), takes=(0, 5))
    (folder / "4_ann_0.wav").unlink()
    with pytest.raises(ValueError, match="missing ann: 4"):
        ConnectedDigits(tmp_path / "fsdd", subset="test")


def test_real_fsdd_official_split(tmp_path, monkeypatch):
    root = fsdd_recordings()
    monkeypatch.setenv("MINIDL_CACHE", str(tmp_path / "cache"))
    test = ConnectedDigits(root, subset="test", num_utterances=12, seed=0, download=False)
    train = ConnectedDigits(root, subset="train", num_utterances=12, seed=0, download=False)
    assert len(test.speakers) >= 6
    for data, allowed in ((test, range(0, 5)), (train, range(5, 50))):
        for plan in data.utterances:
            assert all(int(n[:-4].split("_")[2]) in allowed for n in plan.recordings)
    features = test.features(progress=False)
    # 2-7 trimmed digits with gaps: roughly 0.5-5 s, i.e. 50-500 frames of 10 ms
    assert all(40 <= len(f) <= 600 for f in features)
    signal, transcript = test[0]
    assert len(signal) == sum(test.utterances[0].gaps) + sum(
        len(test.recording(n)) for n in test.utterances[0].recordings)


def test_changed_audio_of_the_same_size_is_not_served_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDL_CACHE", str(tmp_path / "cache"))
    folder = write_tone_fsdd(tmp_path / "fsdd")
    fsdd = FSDD(folder)
    first = ConnectedDigits(fsdd=fsdd, num_utterances=3, seed=0).features(progress=False)
    used = ConnectedDigits(fsdd=fsdd, num_utterances=3, seed=0).utterances[0].recordings[0]
    path = next(r.path for r in fsdd.recordings() if r.name == used)
    signal, rate = soundfile.read(path, dtype="float32")
    size = path.stat().st_size
    soundfile.write(path, (0.5 * signal[::-1]).astype(np.float32), rate, subtype="PCM_16")
    assert path.stat().st_size == size                     # same size, other audio
    again = ConnectedDigits(fsdd=FSDD(folder), num_utterances=3, seed=0).features(progress=False)
    assert not np.array_equal(first[0], again[0])
