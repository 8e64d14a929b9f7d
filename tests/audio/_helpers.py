"""Shared helpers of the audio tests: fixtures file, FSDD subset, a fake FSDD, tolerance."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

FIXTURE = Path(__file__).resolve().parents[1] / "reference" / "fixtures" / "audio_mfcc.npz"


def fixture_arrays() -> dict[str, np.ndarray]:
    with np.load(FIXTURE, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def assert_close_to_range(got: np.ndarray, expected: np.ndarray, fraction: float = 1e-4) -> None:
    """|got - expected| <= fraction x the range of expected, element by element."""
    assert got.shape == expected.shape, f"shape {got.shape} != expected {expected.shape}"
    tolerance = fraction * float(np.ptp(expected))
    worst = float(np.max(np.abs(got.astype(np.float64) - expected)))
    assert worst <= tolerance, f"max |difference| {worst:.3g} > {tolerance:.3g} (1e-4 of range)"


def fsdd_recordings() -> Path:
    """The FSDD recordings folder, or skip when MINIDL_DATA is unset."""
    data = os.environ.get("MINIDL_DATA")
    if not data:
        pytest.skip("MINIDL_DATA is unset: no FSDD recordings to test on")
    folder = Path(data) / "fsdd" / "recordings"
    if not folder.is_dir():
        pytest.skip(f"MINIDL_DATA is set but {folder} does not exist")
    return folder


def fsdd_subset(count: int = 50) -> list[Path]:
    """A fixed, spread-out subset of the recordings (every n-th file by name)."""
    files = sorted(fsdd_recordings().glob("*.wav"))
    return files[:: max(1, len(files) // count)][:count]


#: the speakers of write_fake_fsdd
FAKE_SPEAKERS = ("ann", "bob")


def write_fake_fsdd(folder: Path, takes=(0, 4, 5, 49)) -> dict[str, str]:
    """Tiny synthetic recordings named like FSDD's; returns {name: sha256}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    checksums = {}
    for speaker in FAKE_SPEAKERS:
        for digit in (3, 7):
            for take in takes:
                name = f"{digit}_{speaker}_{take}.wav"
                signal = 0.1 * rng.normal(size=800 + 40 * take).astype(np.float32)
                soundfile.write(folder / name, signal, 8000, subtype="PCM_16")
                checksums[name] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    return checksums
