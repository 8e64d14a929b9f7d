"""Figures the spoken-digit stories write: confusion matrix, training curves, accuracy in noise.

matplotlib is an extra (``pip install minidl[plot]``): it is imported when a figure is drawn,
so the recognisers train and predict without it.
"""
from __future__ import annotations

import pathlib

import numpy as np


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no window, works without a display)."""
    import matplotlib  # noqa: PLC0415 (an extra: only needed when a figure is drawn)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    return plt


def plot_confusion(matrix: np.ndarray, labels: list[str], path: str | pathlib.Path, title: str) -> None:
    """Rows: true class, columns: predicted; each cell shows its count."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("spoken digit")
    high = matrix.max() / 2 if matrix.size else 0
    for (row, col), count in np.ndenumerate(matrix):
        if count:
            ax.text(col, row, int(count), ha="center", va="center", fontsize=8,
                    color="white" if count > high else "black")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_history(history: dict, path: str | pathlib.Path, title: str) -> None:
    """Loss and accuracy per epoch, training and validation."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key in zip(axes, ("loss", "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = history.get(prefix + key)
            if values:
                ax.plot(range(1, len(values) + 1), values, style, label=(prefix or "train_") + key)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_noise(table: dict, path: str | pathlib.Path, title: str) -> None:
    """Accuracy against SNR, one line per (training, test-time processing) condition."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in table.items():
        snrs = [p["snr_db"] for p in points]
        ax.plot(snrs, [100 * p["accuracy"] for p in points], "o-", label=name)
    ax.set_xlabel("SNR of added white noise (dB); 'clean' plotted at 40")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_posteriors(log_probs: np.ndarray, features: np.ndarray, transcript: str, decoded: str,
                    strides: int, path: str | pathlib.Path, forced: np.ndarray | None = None,
                    blank: int = 0, frame_seconds: float = 0.01) -> None:
    """Draw one utterance: its features, the CTC posteriors over time, and two alignments.

    Top: the (normalised) MFCC features. Middle: p(class | frame) for each digit (and the
    blank, grey); each digit's spikes are labelled. Bottom: the greedy best path and the
    forced alignment of the reference (``ctc_digits.forced_alignment``, passed as ``forced``;
    None draws blanks), as coloured strips of classes. Class ``blank`` is the CTC blank and
    class d + 1 the digit d.
    """
    plt = pyplot()
    steps = len(log_probs)
    seconds = (np.arange(steps) + 0.5) * strides * frame_seconds  # centre of each output frame
    probabilities = np.exp(log_probs)
    best = log_probs.argmax(axis=-1)
    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(10, 7), sharex=True,
                                                 gridspec_kw={"height_ratios": [2, 3, 1]})
    top.imshow(features.T, aspect="auto", origin="lower", cmap="viridis",
               extent=(0, len(features) * frame_seconds, 0, features.shape[1]))
    top.set_ylabel("feature")
    top.set_title(f"reference {transcript}   decoded {decoded}")
    colours = plt.get_cmap("tab10")
    middle.plot(seconds, probabilities[:, blank], color="0.6", linestyle="--", label="blank")
    for digit in range(10):
        middle.plot(seconds, probabilities[:, digit + 1], color=colours(digit), label=str(digit))
    starts = np.nonzero((best != blank) & np.r_[True, best[1:] != best[:-1]])[0]
    for t in starts:  # name each digit the best path emits above its spike
        middle.text(seconds[t], 1.04, str(best[t] - 1), ha="center", fontsize=10,
                    color=colours(best[t] - 1))
    middle.set_ylim(0, 1.35)
    middle.set_ylabel("p(class | frame)")
    middle.legend(ncol=11, fontsize=7, loc="upper center", frameon=False)
    if forced is None:
        forced = np.full(steps, blank)
    rows = np.stack([best, forced])
    palette = np.vstack([[0.92, 0.92, 0.92, 1.0], colours(np.arange(10))])
    bottom.imshow(palette[rows], aspect="auto", interpolation="nearest",
                  extent=(0, steps * strides * frame_seconds, 1.5, -0.5))
    bottom.set_yticks([0, 1], ["best path", "forced"])
    bottom.set_xlabel("time (s)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
