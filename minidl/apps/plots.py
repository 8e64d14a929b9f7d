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
