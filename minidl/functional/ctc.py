"""Connectionist temporal classification loss (Graves et al., 2006), one Function.

CTC scores a label sequence l = (l_1, ..., l_S) against per-frame class log-probabilities
without an alignment: it sums the probability of every frame-level path π that collapses to l
(merge repeats, then drop blanks). The sum is computed by dynamic programming over the
*extended* label sequence l' = (blank, l_1, blank, l_2, ..., blank, l_S, blank), of length
2S + 1, in which even positions are blanks and odd positions are labels.

Layout: ``log_probs`` is batch-major ``(batch, time, classes)`` — what recurrent layers emit —
while torch's ``ctc_loss`` takes ``(time, batch, classes)``. Meanings of the other arguments,
the reductions and ``zero_infinity`` are torch's.
"""
from __future__ import annotations

import numpy as np

from minidl import workspace
from minidl.backend import Array, get_array_module, to_numpy
from minidl.function import Function
from minidl.tensor import Tensor, as_tensor

_REDUCTIONS = ("mean", "sum", "none")


class CTCLoss(Function):
    """Per-sample CTC loss -log p(l | x), reduced, by alpha-beta recursions on rescaled probabilities.

    Write y_t(k) = log_probs[b, t, k], T = input length, S = target length, l' the extended
    labels (length 2S + 1), and skip(s) true when a path may jump from s - 2 straight to s,
    i.e. l'_s is not blank and l'_s ≠ l'_{s-2} (between two equal labels the blank is needed).
    The recursions are stated here with logs, where ⊕ is log-sum-exp; the code computes the same
    numbers on rescaled probabilities instead (see Computation below).

    Forward, α_t(s) = log of the total probability of path prefixes π_0..π_t ending in l'_s:

        α_0(0) = y_0(blank),   α_0(1) = y_0(l_1),   α_0(s) = -∞ for s ≥ 2
        α_t(s) = y_t(l'_s) + [α_{t-1}(s) ⊕ α_{t-1}(s-1) ⊕ (α_{t-1}(s-2) if skip(s))]
        loss = -log p(l | x) = -[α_{T-1}(2S) ⊕ α_{T-1}(2S-1)]

    Backward, β_t(s) = log of the total probability of the path suffixes π_{t+1}..π_{T-1} that
    complete a path standing in l'_s at frame t (emission at t itself excluded):

        β_{T-1}(2S) = β_{T-1}(2S-1) = 0,   β_{T-1}(s) = -∞ otherwise
        β_t(s) = [y_{t+1}(l'_s) + β_{t+1}(s)] ⊕ [y_{t+1}(l'_{s+1}) + β_{t+1}(s+1)]
                 ⊕ ([y_{t+1}(l'_{s+2}) + β_{t+1}(s+2)] if skip(s+2))

    α_t(s) + β_t(s) is then the log probability of all complete paths that emit l'_s at frame t,
    and as each path's probability is a product of exp(y_t(π_t)), its derivative with respect
    to y_t(k) is the path probability itself whenever π_t = k. Hence the true derivative

        ∂loss/∂y_t(k) = -(1 / p(l|x)) · Σ_{s: l'_s = k} exp(α_t(s) + β_t(s))
                      = -Σ_{s: l'_s = k} exp(α_t(s) + β_t(s) + loss),

    zero for t ≥ T. (torch's ``ctc_loss`` returns exp(y) plus this, which equals it only after
    ``log_softmax``, whose backward removes any per-frame constant; through ``log_softmax`` the
    two give the same logit gradient, exp(y_t(k)) minus the occupancy above.)

    Reduction "none" gives (batch,), "sum" the total, "mean" the mean over the batch of each
    loss divided by its target length (at least 1), as torch does. With ``zero_infinity`` an
    impossible target (input too short) gives loss 0 and gradient 0; without it, loss +∞ and a
    NaN gradient, like torch.

    Computation: the recursions above are run on rescaled probabilities rather than on logs
    (the rescaling of Rabiner, 1989, that Graves et al. use for CTC): with p_t(s) = exp(y_t(l'_s)),

        α̂_t(s) = p_t(s) · [α̂_{t-1}(s) + α̂_{t-1}(s-1) + skip(s) · α̂_{t-1}(s-2)] / c_t,

    where c_t is α̂'s sum over s every K-th frame (and the last) and 1 on the others, so that
    log p(l|x) = Σ_{t<T} log c_t + log[α̂_{T-1}(2S) + α̂_{T-1}(2S-1)]. A frame shrinks the sum by
    at most its smallest p (each position keeps its own path) and grows it at most 3 times its
    largest, so K = ⌊230 / max(-min y, max y + log 3)⌋ frames (at least 1) keep it within e^±230:
    any product of an α̂ and a β̂ stays far inside float64's range.

    β needs no recursion of its own: written for β'_t(s) = p_t(s)·β_t(s), it is the α recursion
    run backwards in time over the reversed extended labels (a skip from s + 2 to s is allowed
    exactly when skip(s + 2) is). So each sample's frames are reversed (over its own T frames)
    and its labels in order, and these B rows are stacked under the B forward rows: one loop
    over time runs both recursions, each step a few ufuncs on one contiguous buffer (in
    benchmarks/results/ctc.json, from two loops of seven calls on strided 2-D views per frame,
    2.5× PyTorch's time, to the figure there now). A reversed row is stored right-aligned, so that
    reversing the whole row puts every position back where the forward row has it. The
    occupancy then needs α before its frame's emission (the bracket above) times β', and that
    bracket is α̂_t(s) / p_t(s) up to the frame's c_t (0 where p = 0, which makes the product 0):

        exp(α_t(s) + β_t(s) + loss) = [α̂_t(s) / p_t(s)] β̂'_t(s) / Σ_s' [α̂_t(s') / p_t(s')] β̂'_t(s'),

    since the factors of both rescalings cancel in the ratio. As p_t(s) is p_t(k) for every s
    that carries class k, the division is done once per class, after summing α̂ β̂' over those
    s. (Dividing by p in backward instead of keeping every frame's bracket saves a
    (time, 2·batch, 2S+3) float64 buffer, 1.7 MiB in benchmarks/ctc.py's case; with the
    in-place backward, what the loss adds to that process's peak RSS went 6.9 -> 3.4 MiB, and
    the peak itself is in benchmarks/results/ctc.json.) The recursion runs in float64;
    p = exp(y) is taken in y's dtype (NumPy's float32 exp is vectorised, its float64 exp is not).

    Vectorised over batch and label positions; the only Python loop is over time. Positions
    beyond a sample's 2S + 1, two guard positions in front of every row (read as s - 1 and s - 2
    of its first positions) and frames beyond its input length get p = 0, so one recursion serves
    the whole padded batch.

    Shapes: log_probs (batch, time, classes) float; targets (batch, max_target_length) int,
    padded; input_lengths, target_lengths (batch,) int. Output () or (batch,), log_probs' dtype.
    """

    def __init__(self, targets: Array, input_lengths: np.ndarray, target_lengths: np.ndarray,
                 blank: int, reduction: str, zero_infinity: bool):
        self.targets = targets                # xp int64 (batch, max_target_length)
        self.input_lengths = input_lengths    # numpy int64 (batch,), host side: drives the loop
        self.target_lengths = target_lengths  # numpy int64 (batch,)
        self.blank = blank
        self.reduction = reduction
        self.zero_infinity = zero_infinity

    def _extended(self, xp, targets: Array, positions: int) -> tuple[Array, Array]:
        """l' (batch, 2S+1) with blanks on padding, and skip(s) as float64 0/1."""
        batch = targets.shape[0]
        extended = xp.full((batch, positions), self.blank, dtype=np.int64)
        extended[:, 1::2] = targets[:, :positions // 2]
        valid = xp.arange(positions)[None, :] <= 2 * xp.asarray(self.target_lengths)[:, None]
        extended = xp.where(valid, extended, self.blank)                  # padding -> safe index
        skip = xp.zeros((batch, positions), dtype=np.float64)
        skip[:, 2:] = (extended[:, 2:] != self.blank) & (extended[:, 2:] != extended[:, :-2])
        return extended, skip

    def forward(self, log_probs: Array) -> Array:
        xp = get_array_module(log_probs)
        batch, time, classes = log_probs.shape
        dtype = log_probs.dtype
        max_target = int(self.target_lengths.max()) if batch else 0
        positions = 2 * max_target + 1
        width, rows = positions + 2, 2 * batch     # two guards per row; forward rows, then reversed
        stride = rows * width
        target_lengths = xp.asarray(self.target_lengths)
        input_lengths = xp.asarray(self.input_lengths)

        # Forward rows: l' from position 0. Reversed rows: l' of the reversed targets, shifted
        # right by 2(S_max - S_b) so that each ends at the last position (right-aligned).
        label = xp.arange(max_target)[None, :]
        reversed_targets = xp.take_along_axis(self.targets[:, :max_target],
                                              xp.maximum(target_lengths[:, None] - 1 - label, 0), axis=1)
        extended, skip = self._extended(xp, self.targets, positions)
        extended_reversed, skip_reversed = self._extended(xp, reversed_targets, positions)
        valid = xp.arange(positions)[None, :] <= 2 * target_lengths[:, None]
        shift = (positions - 1 - 2 * target_lengths)[:, None]
        aligned = (xp.arange(positions)[None, :] - shift) % positions     # right-aligned -> left
        column = xp.full((rows, width), classes, dtype=np.int64)          # class `classes`: p = 0
        column[:batch, 2:] = xp.where(valid, extended, classes)
        column[batch:, 2:] = xp.where(xp.take_along_axis(valid, aligned, axis=1),
                                      xp.take_along_axis(extended_reversed, aligned, axis=1), classes)
        skip_flat = xp.zeros((rows, width), dtype=np.float64)
        skip_flat[:batch, 2:] = skip
        skip_flat[batch:, 2:] = xp.take_along_axis(skip_reversed, aligned, axis=1) * \
            xp.take_along_axis(valid, aligned, axis=1)
        skip_flat = skip_flat.reshape(-1)
        gather = (xp.arange(rows)[:, None] * (classes + 1) + column).reshape(-1)  # within a frame

        # p = exp(y) per (frame, row, class), with a class of zeros, and frames past a sample's
        # length (and the reversed rows' frames, T_b - 1 - t) taken from a frame of zeros.
        # Kept in y's dtype (float32: half the memory); the loop's product with α̂ is float64.
        probabilities = xp.zeros((batch * time + 1, classes + 1), dtype=dtype)
        xp.exp(log_probs.reshape(batch * time, classes), out=probabilities[:-1, :classes])
        frame = xp.arange(time)[:, None]
        sample = xp.arange(batch)[None, :]
        live = frame < input_lengths[None, :]
        source = xp.concatenate([xp.where(live, sample * time + frame, batch * time),
                                 xp.where(live, sample * time + input_lengths[None, :] - 1 - frame,
                                          batch * time)], axis=1)                     # (time, rows)
        by_frame = xp.take(probabilities, source.reshape(-1), axis=0).reshape(time, -1)
        del probabilities  # not needed past here: the loop's buffers can take its memory

        # Rescale every `interval` frames (see Computation); NaN or ±∞ in y: every frame.
        with np.errstate(invalid="ignore"):
            spread = max(-float(log_probs.min()), float(log_probs.max()) + float(np.log(3.0)), 1e-300)
        interval = int(min(max(230.0 / spread, 1.0), time)) if np.isfinite(spread) else 1

        # The recursion on one flat buffer: row t+1 of `history` is frame t (row 0 a virtual
        # frame -1 holding 1 at every row's first position, the last row zeros), with 2 zeros
        # in front so that the s - 1 and s - 2 views of row 0 exist; `bracket` holds one frame's
        # α̂ before the emission.
        # It comes from the workspace pool and goes back after backward: a fresh array of this
        # size costs a page fault per 4 KiB on every call (benchmarks/results/steady.json).
        history = workspace.empty(xp, (2 + (time + 2) * stride,), np.float64)
        history[:2 + stride] = 0.0                    # the lead, and the virtual frame -1
        history[2 + (time + 1) * stride:] = 0.0       # the zero row
        first = xp.concatenate([xp.zeros(batch, dtype=np.int64), shift[:, 0]])
        history[2 + xp.arange(rows) * width + 2 + first] = 1.0
        bracket = xp.empty(stride, dtype=np.float64)
        # p of `chunk` frames at a time, gathered by one take: per frame, the take call cost more
        # than its 1,088 entries (benchmarks/ctc.py's case); the chunk bounds the memory
        chunk = min(time, 32)
        emissions = xp.empty((chunk, stride), dtype=dtype)
        scratch = xp.empty(stride, dtype=np.float64)
        ones = xp.ones(width, dtype=np.float64)
        log_scale = xp.zeros((time, rows), dtype=np.float64)
        tiny = np.finfo(np.float64).tiny
        for t in range(time):
            start = 2 + t * stride
            xp.add(history[start:start + stride], history[start - 1:start - 1 + stride], out=bracket)
            xp.multiply(history[start - 2:start - 2 + stride], skip_flat, out=scratch)
            bracket += scratch
            if t % chunk == 0:
                n = min(chunk, time - t)
                xp.take(by_frame[t:t + n], gather, axis=1, out=emissions[:n])
            current = history[start + stride:start + 2 * stride]
            xp.multiply(bracket, emissions[t % chunk], out=current)
            if t % interval == interval - 1 or t == time - 1:
                current = current.reshape(rows, width)
                total = current @ ones
                xp.maximum(total, tiny, out=total)   # no path left: α̂ stays 0 and p(l|x) = 0
                log_scale[t] = xp.log(total)
                current *= (1.0 / total)[:, None]

        # log p(l|x) = Σ_{t<T} log c_t + log[α̂_{T-1}(2S) + α̂_{T-1}(2S-1)], at each sample's T, S.
        last = xp.maximum(input_lengths - 1, 0)
        final = history[2 + stride:2 + (time + 1) * stride].reshape(time, rows, width)[last, xp.arange(batch)]
        end_index = 2 + 2 * target_lengths
        end = xp.take_along_axis(final, end_index[:, None], axis=1)[:, 0] + xp.where(
            target_lengths > 0, xp.take_along_axis(final, (end_index - 1)[:, None], axis=1)[:, 0], 0.0)
        scales = xp.where(frame <= last[None, :], log_scale[:, :batch], 0.0).sum(axis=0)
        with np.errstate(divide="ignore"):  # log 0 = -∞: an impossible target
            log_likelihood = scales + xp.log(end)
        # An empty input produces only the empty labelling, with probability 1.
        log_likelihood = xp.where(input_lengths == 0, xp.where(target_lengths == 0, 0.0, -np.inf),
                                  log_likelihood).astype(dtype)
        losses = -log_likelihood
        self.infinite = xp.isinf(losses)
        if self.zero_infinity:
            losses = xp.where(self.infinite, dtype.type(0), losses)

        self.shape, self.dtype = log_probs.shape, dtype
        self.history, self.extended, self.log_probs = history, extended, log_probs
        if not self.will_backward():
            workspace.release(history)
        if self.reduction == "none":
            return losses
        if self.reduction == "sum":
            return losses.sum()
        divisor = xp.maximum(target_lengths, 1).astype(dtype)
        return (losses / divisor).mean()

    def backward(self, gy: Array) -> Array:
        xp = get_array_module(gy)
        batch, time, classes = self.shape
        dtype = self.dtype
        positions = self.extended.shape[1]
        width, rows = positions + 2, 2 * batch
        target_lengths = xp.asarray(self.target_lengths)
        input_lengths = xp.asarray(self.input_lengths)

        # β̂' of sample b at frame t is its reversed row at frame T_b - 1 - t (history row
        # T_b - t), read backwards; frames past the input read the last row, all zeros.
        frame = xp.arange(time)[None, :]
        source_row = xp.where(frame < input_lengths[:, None], input_lengths[:, None] - frame, time + 1)
        source = source_row * rows + batch + xp.arange(batch)[:, None]                 # (batch, time)
        frames = self.history[2:].reshape(time + 2, rows, width).reshape(-1, width)
        beta = xp.take(frames, source.reshape(-1), axis=0)[:, :1:-1].reshape(batch, time, positions)
        alpha = frames[rows:(time + 1) * rows].reshape(time, rows, width)[:, :batch, 2:].transpose(1, 0, 2)

        # Occupancy exp(α_t(s) + β_t(s) - log p), summed over the positions s that carry class k:
        # [Σ_{s: l'_s = k} α̂_t(s) β̂'_t(s)] / p_t(k), normalised over k. p_t(s) = p_t(k) on all of
        # them, so the division by p (see Computation) comes after the sum, on (batch, time,
        # classes); p = 0 makes α̂ 0 there, and the term 0. The sum is one batched product with
        # a one-hot matrix (no scatter-add): (batch, time, 2S+1) @ (batch, 2S+1, classes).
        # An impossible target makes the total 0 and the occupancy 0/0 = NaN within the sample's
        # frames (torch gives NaN there too), or 0 under zero_infinity.
        one_hot = (self.extended[:, :, None] == xp.arange(classes)[None, None, :]).astype(np.float64)
        occupancy = xp.multiply(alpha, beta, out=beta) @ one_hot  # beta's gathered copy is ours
        emission = xp.exp(self.log_probs)   # p as the recursion had it (exp in y's dtype)
        impossible_emission = emission == 0.0
        with np.errstate(invalid="ignore", divide="ignore"):  # p = 0; the 0/0 just described
            occupancy /= emission
            occupancy[impossible_emission] = 0.0
            occupancy /= occupancy.sum(axis=2, keepdims=True)
        if self.zero_infinity:
            occupancy[self.infinite] = 0.0
        gx = occupancy.astype(dtype, copy=False)
        xp.negative(gx, out=gx)
        gx[frame >= input_lengths[:, None]] = 0  # 0 past the input, even for NaN rows
        workspace.release(self.history)

        if self.reduction == "none":
            weight = gy
        elif self.reduction == "sum":
            weight = xp.broadcast_to(gy, (batch,))
        else:
            weight = gy / (xp.maximum(target_lengths, 1).astype(dtype) * batch)
        if self.zero_infinity:
            weight = xp.where(self.infinite, dtype.type(0), weight)
        gx *= weight[:, None, None].astype(dtype, copy=False)
        return gx


def _host_ints(value, name: str, where: str = "ctc_loss") -> np.ndarray:
    """An integer argument (Tensor, array or list) as a NumPy int64 array, or a clear error."""
    value = np.asarray(to_numpy(value.data if isinstance(value, Tensor) else value))
    if value.dtype.kind == "f":
        if value.size and not np.all(value == np.round(value)):
            raise ValueError(f"{where}: {name} must be whole numbers, got {value.ravel()[:5]}")
    elif value.dtype.kind not in "iub":
        raise TypeError(f"{where}: {name} must be integers, got dtype {value.dtype}")
    return value.astype(np.int64)


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank: int = 0,
             reduction: str = "mean", zero_infinity: bool = False) -> Tensor:
    """CTC loss of padded label sequences given per-frame class log-probabilities.

    Args:
        log_probs: Tensor (batch, time, classes), float: log-probabilities, usually the output
            of ``log_softmax`` (batch-major, unlike torch's (time, batch, classes)).
        targets: (batch, max_target_length) ints, right-padded; entries past a sample's target
            length are ignored. Labels are in [0, classes) and never ``blank``.
        input_lengths: (batch,) ints in [0, time]: frames used by each sample.
        target_lengths: (batch,) ints in [0, max_target_length]: labels in each target.
        blank: the blank class index.
        reduction: "mean" (each loss divided by its target length, at least 1, then averaged
            over the batch — torch's meaning), "sum", or "none" (one loss per sample).
        zero_infinity: give loss 0 and gradient 0 for targets that no path can produce (input
            shorter than the target plus the blanks its repeated labels need).
    Returns:
        A scalar Tensor, or (batch,) for reduction "none". See CTCLoss for the recursions and
        the gradient, which is the true derivative with respect to ``log_probs``.
    Raises:
        ValueError / TypeError: naming the argument, what was expected and what came.
    """
    log_probs = as_tensor(log_probs)
    if log_probs.ndim != 3:
        raise ValueError(f"ctc_loss: log_probs must be (batch, time, classes), got shape {log_probs.shape}")
    if log_probs.dtype.kind != "f":
        raise TypeError(f"ctc_loss: log_probs must be floating point, got dtype {log_probs.dtype}")
    batch, time, classes = log_probs.shape
    if time == 0:
        raise ValueError(f"ctc_loss: log_probs must have at least one frame, got shape {log_probs.shape}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"ctc_loss: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if not 0 <= int(blank) < classes:
        raise ValueError(f"ctc_loss: blank must be a class index in [0, {classes}), got {blank}")
    blank = int(blank)

    targets = _host_ints(targets, "targets")
    input_lengths = _host_ints(input_lengths, "input_lengths")
    target_lengths = _host_ints(target_lengths, "target_lengths")
    if targets.ndim != 2 or targets.shape[0] != batch:
        raise ValueError(f"ctc_loss: targets must be (batch, max_target_length) = ({batch}, S), "
                         f"got shape {targets.shape}")
    for name, lengths in (("input_lengths", input_lengths), ("target_lengths", target_lengths)):
        if lengths.shape != (batch,):
            raise ValueError(f"ctc_loss: {name} must have shape ({batch},) (one per sample), "
                             f"got shape {lengths.shape}")
    if batch and (input_lengths.min() < 0 or input_lengths.max() > time):
        bad = int(input_lengths[(input_lengths < 0) | (input_lengths > time)][0])
        raise ValueError(f"ctc_loss: input_lengths must be in [0, {time}] (the time axis of "
                         f"log_probs), got {bad}")
    if batch and (target_lengths.min() < 0 or target_lengths.max() > targets.shape[1]):
        bad = int(target_lengths[(target_lengths < 0) | (target_lengths > targets.shape[1])][0])
        raise ValueError(f"ctc_loss: target_lengths must be in [0, {targets.shape[1]}] (the width "
                         f"of targets), got {bad}")
    used = np.arange(targets.shape[1])[None, :] < target_lengths[:, None]
    labels = targets[used]
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        bad = int(labels[(labels < 0) | (labels >= classes)][0])
        raise ValueError(f"ctc_loss: target labels must be in [0, {classes}) for {classes} "
                         f"classes, got {bad}")
    if labels.size and np.any(labels == blank):
        sample = int(np.nonzero(np.any(used & (targets == blank), axis=1))[0][0])
        raise ValueError(f"ctc_loss: targets must not contain the blank class {blank} "
                         f"(found in sample {sample}); labels are the other classes")

    xp = get_array_module(log_probs.data)
    targets = xp.asarray(np.where(used, targets, blank))
    return CTCLoss(targets, input_lengths, target_lengths, blank, reduction,
                   bool(zero_infinity)).apply(log_probs)
