"""Regenerate tests/reference/fixtures/audio_*.npz from librosa and python_speech_features.

    python tests/reference/make_audio_fixtures.py

The signals are synthetic (a fixed seed: voiced-like harmonic bursts with a gliding pitch,
noise and silence), never FSDD recordings, so the fixtures are small and freely licensed.
The tests in tests/audio/ compare audio.features against these files when the reference
libraries are missing, and against the live libraries when they are installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent / "fixtures"

#: (name, sample_rate, samples)
SIGNALS = (("speechlike_8k", 8000, 5000), ("speechlike_16k", 16000, 7321),
           ("short_8k", 8000, 150))

#: overrides of the librosa preset checked against librosa with the same values
LIBROSA_OVERRIDES = {"n_fft": 256, "hop_length": 80, "n_mels": 40}


def synthetic_speech(sample_rate: int, samples: int, seed: int) -> np.ndarray:
    """Harmonic bursts with gliding pitch over faint noise, with silent edges; float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / sample_rate
    pitch = 120 + 60 * np.sin(2 * np.pi * 1.3 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12) if k * 180 < sample_rate / 2)
    envelope = np.clip(np.sin(np.pi * t / t[-1]) if samples > 1 else t, 0, None) ** 2
    signal = 0.3 * envelope * voiced + 0.01 * rng.normal(size=samples)
    signal[: samples // 10] = 0.0  # digital silence, as at the start of many recordings
    return np.clip(signal, -1, 1).astype(np.float32)


def main() -> None:
    import librosa
    import python_speech_features as psf

    FIXTURES.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    for seed, (name, rate, samples) in enumerate(SIGNALS):
        y = synthetic_speech(rate, samples, seed)
        arrays[f"{name}/signal"] = y
        arrays[f"{name}/sample_rate"] = np.array(rate)
        arrays[f"{name}/librosa"] = librosa.feature.mfcc(y=y, sr=rate, n_mfcc=13).T
        arrays[f"{name}/librosa_overrides"] = librosa.feature.mfcc(
            y=y, sr=rate, n_mfcc=13, **LIBROSA_OVERRIDES).T
        arrays[f"{name}/htk"] = psf.mfcc(y, samplerate=rate).astype(np.float32)
        arrays[f"{name}/htk_delta"] = psf.delta(psf.mfcc(y, samplerate=rate), 2).astype(
            np.float32)
    for rate, n_fft, n_mels in ((8000, 512, 40), (16000, 2048, 128)):
        for htk in (False, True):
            scale = "htk" if htk else "slaney"
            arrays[f"mel/{scale}_{rate}_{n_fft}_{n_mels}"] = librosa.filters.mel(
                sr=rate, n_fft=n_fft, n_mels=n_mels, htk=htk)
        arrays[f"mel/bins_{rate}_{n_fft}_26"] = psf.get_filterbanks(
            26, n_fft, rate).astype(np.float32)
    path = FIXTURES / "audio_mfcc.npz"
    np.savez_compressed(path, **arrays)
    versions = {"librosa": librosa.__version__, "python_speech_features": "0.6"}
    print(f"wrote {path} ({path.stat().st_size // 1024} KB) with {versions}")


if __name__ == "__main__":
    main()
