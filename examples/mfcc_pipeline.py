"""Every stage of the MFCC pipeline on one FSDD recording, in one figure.

    MINIDL_DATA=/path/to/data python examples/mfcc_pipeline.py [--file 7_jackson_32.wav]
        [--preset htk] [--out runs/mfcc_pipeline/]

Loads one recording, runs it through audio.features one stage at a time (the same functions
mfcc chains), and writes ``pipeline.png`` with a panel per stage - waveform, pre-emphasis,
frames, window, power spectrum, mel filterbank, log-mel, MFCC, deltas - plus ``result.json``
(shapes and whether the stages reproduce audio.features.mfcc exactly). Without MINIDL_DATA
the FSDD lookup order applies (~/.cache/minidl/fsdd, then a download).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import audio
from audio import features as F
from audio.fsdd import FSDD


def run_stages(signal: np.ndarray, sample_rate: int, preset: str) -> dict[str, np.ndarray]:
    """The chain of audio.features.mfcc, stage by stage, keeping every intermediate."""
    o = F.mfcc_options(sample_rate, 13, preset)
    stages = {"waveform": signal}
    stages["pre-emphasis"] = F.pre_emphasis(signal, o.pre_emphasis)
    padded = F.pad_signal(stages["pre-emphasis"], o.frame_length, o.hop_length, o.padding)
    stages["frames"] = F.frame_signal(padded, o.frame_length, o.hop_length)
    stages["window"] = F.window(o.window, o.win_length, o.frame_length)
    stages["windowed frames"] = F.apply_window(stages["frames"], o.window, o.win_length)
    stages["power spectrum"] = F.power_spectrum(stages["windowed frames"], o.n_fft,
                                                normalize=o.normalize_power)
    stages["mel filterbank"] = F.mel_filterbank(sample_rate, o.n_fft, o.n_mels, o.fmin, o.fmax,
                                                o.mel_scale, o.mel_norm, o.bin_rounded)
    energies = stages["power spectrum"] @ stages["mel filterbank"].T
    stages["log-mel"] = F.log_mel(energies, o.log, top_db=o.top_db)
    cepstra = F.lifter(F.dct(stages["log-mel"], o.n_mfcc), o.lifter, o.lifter_first_index)
    if o.append_energy:
        energy = stages["power spectrum"].sum(axis=-1)
        cepstra[:, 0] = np.log(np.maximum(energy, F.EPS))
    stages["MFCC"] = cepstra
    stages["deltas"] = F.deltas(cepstra)
    return stages


def plot(stages: dict[str, np.ndarray], sample_rate: int, title: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(3, 3, figsize=(15, 11))
    axes = axes.ravel()
    seconds = np.arange(len(stages["waveform"])) / sample_rate
    axes[0].plot(seconds, stages["waveform"], linewidth=0.5)
    axes[0].set(title="1. waveform", xlabel="seconds", ylabel="amplitude")
    axes[1].plot(seconds, stages["pre-emphasis"], linewidth=0.5, color="tab:orange")
    axes[1].set(title="2. pre-emphasis", xlabel="seconds")
    frames = stages["frames"]
    middle = int(np.argmax((frames ** 2).sum(axis=1)))  # the loudest frame
    spacing = 2.5 * float(np.abs(frames[middle]).max())
    for offset in range(3):
        axes[2].plot(frames[min(middle + offset, len(frames) - 1)] + offset * spacing,
                     linewidth=0.7)
    axes[2].set(title=f"3. frames ({frames.shape[0]} x {frames.shape[1]} samples): "
                      f"{middle}, {middle + 1}, {middle + 2}", xlabel="sample in frame")
    scale = float(np.abs(stages["windowed frames"][middle]).max()) or 1.0
    axes[3].plot(stages["window"], label="window")
    axes[3].plot(stages["windowed frames"][middle] / scale, linewidth=0.6,
                 label=f"frame {middle}, windowed (scaled to peak 1)")
    axes[3].set(title="4. window", xlabel="sample in frame")
    axes[3].legend(loc="upper right")
    power_db = 10 * np.log10(np.maximum(stages["power spectrum"], 1e-12))
    image = axes[4].imshow(power_db.T, origin="lower", aspect="auto", cmap="magma",
                           extent=(0, len(frames), 0, sample_rate / 2))
    axes[4].set(title="5. power spectrum (dB)", xlabel="frame", ylabel="Hz")
    figure.colorbar(image, ax=axes[4])
    bank = stages["mel filterbank"]
    hz = np.linspace(0, sample_rate / 2, bank.shape[1])
    axes[5].plot(hz, bank.T, linewidth=0.7)
    axes[5].set(title=f"6. mel filterbank ({bank.shape[0]} filters)", xlabel="Hz")
    for index, name in enumerate(("log-mel", "MFCC", "deltas"), start=6):
        image = axes[index].imshow(stages[name].T, origin="lower", aspect="auto",
                                   cmap="viridis")
        axes[index].set(title=f"{index + 1}. {name} {stages[name].shape}", xlabel="frame")
        figure.colorbar(image, ax=axes[index])
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description="Plot every stage of the MFCC pipeline.")
    parser.add_argument("--file", default="7_jackson_32.wav", help="an FSDD file name")
    parser.add_argument("--preset", default="htk", choices=F.PRESETS)
    parser.add_argument("--out", type=Path, default=Path("runs/mfcc_pipeline"))
    args = parser.parse_args()

    dataset = FSDD()
    signal, sample_rate = audio.load(dataset.folder / args.file)
    stages = run_stages(signal, sample_rate, args.preset)
    reference = F.mfcc(signal, sample_rate, preset=args.preset)
    same = bool(np.allclose(stages["MFCC"], reference, rtol=1e-5, atol=1e-4))
    figure = args.out / "pipeline.png"
    plot(stages, sample_rate, f"{args.file}: MFCC pipeline, preset '{args.preset}' "
                              f"(FSDD, CC BY-SA 4.0)", figure)
    result = {"file": args.file, "preset": args.preset, "sample_rate": sample_rate,
              "samples": len(signal), "mfcc_shape": list(stages["MFCC"].shape),
              "stages_equal_mfcc": same, "figure": str(figure)}
    (args.out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"stages reproduce audio.features.mfcc: {same}; MFCC {stages['MFCC'].shape}; "
          f"wrote {figure}")


if __name__ == "__main__":
    main()
