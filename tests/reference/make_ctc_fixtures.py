"""Regenerate tests/reference/fixtures/ctc_*.npz from torch.nn.functional.ctc_loss.

Each file holds one batch (logits (batch, time, classes) float64, padded targets, lengths,
blank) and, for every reduction and zero_infinity setting, torch's loss of
``ctc_loss(log_softmax(logits))`` and its gradient with respect to the logits for an upstream
gradient of ones. minidl's ctc_loss takes batch-major log-probabilities, so the logits here are
(batch, time, classes) and are transposed for torch. Run from the repository root:

    .venv/bin/python tests/reference/make_ctc_fixtures.py
"""
from __future__ import annotations

import os

import numpy as np

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
REDUCTIONS = ("none", "sum", "mean")

# name: (time, classes, blank, targets (padded with 0), target_lengths, input_lengths)
CASES = {
    # varied input lengths, a repeated label (needs a blank between), a full-length target
    "varied": (9, 5, 0, [[1, 2, 3, 0], [2, 2, 0, 0], [4, 1, 4, 3], [3, 0, 0, 0]],
               [3, 2, 4, 1], [9, 7, 8, 3]),
    # empty targets (one with one frame), repeats throughout, and targets that are too short
    # for their input: [1, 1, 1] needs 5 frames, [2, 3, 2, 3] needs 4
    "edge": (6, 4, 0, [[0, 0, 0], [1, 1, 1], [1, 1, 1], [2, 3, 2], [3, 0, 0], [0, 0, 0]],
             [0, 3, 3, 3, 1, 0], [6, 5, 4, 2, 1, 1]),
    # blank as the last class, so label 0 is an ordinary label
    "blank_last": (7, 4, 3, [[0, 1, 0], [2, 2, 0], [1, 0, 2]], [3, 2, 3], [7, 6, 5]),
}


def torch_ctc(logits, targets, input_lengths, target_lengths, blank, reduction, zero_infinity):
    """torch's loss and logit gradient (ones upstream) for batch-major logits."""
    import torch  # noqa: PLC0415
    import torch.nn.functional as TF  # noqa: PLC0415
    x = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    loss = TF.ctc_loss(TF.log_softmax(x, dim=-1).transpose(0, 1), torch.tensor(targets),
                       torch.tensor(input_lengths), torch.tensor(target_lengths), blank=blank,
                       reduction=reduction, zero_infinity=zero_infinity)
    loss.backward(torch.ones_like(loss))
    return loss.detach().numpy(), x.grad.numpy()


def main() -> None:
    import torch  # noqa: PLC0415
    os.makedirs(FIXTURES, exist_ok=True)
    rng = np.random.default_rng(2006)
    for name, (time, classes, blank, targets, target_lengths, input_lengths) in CASES.items():
        targets = np.array(targets, dtype=np.int64)
        target_lengths = np.array(target_lengths, dtype=np.int64)
        input_lengths = np.array(input_lengths, dtype=np.int64)
        logits = rng.normal(scale=1.5, size=(len(targets), time, classes))
        arrays = {"logits": logits, "targets": targets, "input_lengths": input_lengths,
                  "target_lengths": target_lengths, "blank": np.array(blank),
                  "torch_version": np.array(torch.__version__)}
        for reduction in REDUCTIONS:
            for zero_infinity in (False, True):
                loss, grad = torch_ctc(logits, targets, input_lengths, target_lengths, blank,
                                       reduction, zero_infinity)
                key = f"{reduction}_{int(zero_infinity)}"
                arrays[f"loss_{key}"] = loss
                arrays[f"grad_{key}"] = grad
        path = os.path.join(FIXTURES, f"ctc_{name}.npz")
        np.savez_compressed(path, **arrays)


if __name__ == "__main__":
    main()
