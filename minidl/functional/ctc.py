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
        c_t = Σ_s (the bracket times p_t(s)),   so   log p(l|x) = Σ_{t<T} log c_t + log[α̂_{T-1}(2S) + α̂_{T-1}(2S-1)],

    and β̂ likewise, divided by its own sum at each frame. Each frame's α̂_t and β̂_t are the true
    α_t, β_t times factors that cancel in the occupancy, since Σ_s α_t(s)β_t(s) = p(l|x) at
    every t:  exp(α_t(s) + β_t(s) + loss) = α̂_t(s)β̂_t(s) / Σ_s' α̂_t(s')β̂_t(s').  The same
    numbers as the ⊕ recursions above, without underflow, but made of multiplications and additions
    that NumPy vectorises, where ``logaddexp`` costs an exp and a log1p per element
    (benchmarks/ctc.py times the whole loss); the arithmetic runs in float64 whatever the input dtype.

    Vectorised over batch and label positions; the only Python loop is over time. Positions
    beyond a sample's 2S + 1 get y = -∞ (unreachable), and frames beyond its input length are
    never read by the loss, so one recursion serves the whole padded batch.

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

    def forward(self, log_probs: Array) -> Array:
        xp = get_array_module(log_probs)
        batch, time, classes = log_probs.shape
        dtype = log_probs.dtype
        negative_inf = dtype.type(-np.inf)
        max_target = int(self.target_lengths.max()) if batch else 0
        positions = 2 * max_target + 1
        target_lengths = xp.asarray(self.target_lengths)

        # Extended labels l' (batch, 2S+1): blanks at even positions, targets at odd ones.
        extended = xp.full((batch, positions), self.blank, dtype=np.int64)
        extended[:, 1::2] = self.targets[:, :max_target]
        position = xp.arange(positions)
        valid = position[None, :] <= 2 * target_lengths[:, None]          # s ≤ 2S_b
        extended = xp.where(valid, extended, self.blank)                  # padding -> safe index
        # skip(s): l'_s is a label and differs from l'_{s-2}
        skip = xp.zeros((batch, positions), dtype=bool)
        skip[:, 2:] = (extended[:, 2:] != self.blank) & (extended[:, 2:] != extended[:, :-2])

        # y_t(l'_s), time-major (time, batch, 2S+1) so each step reads one contiguous block.
        emitted = xp.take_along_axis(log_probs, extended[:, None, :], axis=2)
        emitted = xp.where(valid[:, None, :], emitted, negative_inf)
        emitted = xp.ascontiguousarray(emitted.transpose(1, 0, 2))

        # Rescaled α with two zero columns in front, so α̂_{t-1}(s-1), α̂_{t-1}(s-2) are views.
        work = np.float64
        emission = xp.exp(emitted.astype(work))            # p_t(s); 0 where unreachable
        skip_mask = skip.astype(work)
        alpha = xp.zeros((time, batch, positions + 2), dtype=work)
        scale = xp.ones((time, batch), dtype=work)          # c_t
        start = xp.zeros((batch, positions + 2), dtype=work)
        start[:, 2] = 1  # a virtual α_{-1}: all paths start in the first blank's predecessor
        scratch = xp.empty((batch, positions), dtype=work)
        tiny = np.finfo(work).tiny
        previous = start
        for t in range(time):
            current = alpha[t, :, 2:]
            xp.add(previous[:, 2:], previous[:, 1:-1], out=current)
            xp.multiply(previous[:, :-2], skip_mask, out=scratch)
            current += scratch
            current *= emission[t]
            total = current.sum(axis=1, out=scale[t])
            xp.maximum(total, tiny, out=total)   # no path left: α̂ stays 0 and p(l|x) = 0
            current /= total[:, None]
            previous = alpha[t]
        alpha = alpha[:, :, 2:]

        # log p(l|x) = Σ_{t<T} log c_t + log[α̂_{T-1}(2S) + α̂_{T-1}(2S-1)], at each sample's T, S.
        input_lengths = xp.asarray(self.input_lengths)
        rows = xp.arange(batch)
        last = xp.maximum(input_lengths - 1, 0)
        end = alpha[last, rows, 2 * target_lengths] + xp.where(
            target_lengths > 0, alpha[last, rows, xp.maximum(2 * target_lengths - 1, 0)], 0.0)
        with np.errstate(divide="ignore"):  # log 0 = -∞: an impossible target
            log_likelihood = xp.cumsum(xp.log(scale), axis=0)[last, rows] + xp.log(end)
        # An empty input produces only the empty labelling, with probability 1.
        log_likelihood = xp.where(input_lengths == 0, xp.where(target_lengths == 0, 0.0, -np.inf),
                                  log_likelihood).astype(dtype)
        losses = -log_likelihood
        self.infinite = xp.isinf(losses)
        if self.zero_infinity:
            losses = xp.where(self.infinite, dtype.type(0), losses)

        self.shape, self.dtype = log_probs.shape, dtype
        self.alpha, self.emission, self.extended = alpha, emission, extended
        self.skip_mask = skip_mask
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
        positions = self.alpha.shape[2]

        # Rescaled β̂, with two zero columns behind, so β̂_{t+1}(s+1), β̂_{t+1}(s+2) are views.
        # A sample's β̂ starts (1 at its two end positions) at its own last frame T_b - 1; the
        # frames after it are never read.
        work = np.float64
        beta = xp.zeros((time, batch, positions + 2), dtype=work)
        end_start = xp.zeros((batch, positions), dtype=work)
        rows = xp.arange(batch)
        target_lengths = xp.asarray(self.target_lengths)
        end_start[rows, 2 * target_lengths] = 1
        has_label = target_lengths > 0
        end_start[rows[has_label], 2 * target_lengths[has_label] - 1] = 1
        skip_next = xp.zeros((batch, positions + 2), dtype=work)
        skip_next[:, :positions] = self.skip_mask  # skip_next[s + 2] = skip(s + 2)
        ends = {}
        for t in np.unique(self.input_lengths[self.input_lengths > 0] - 1):
            ends[int(t)] = xp.asarray(self.input_lengths - 1 == t)[:, None]
        step = xp.zeros((batch, positions + 2), dtype=work)  # p_{t+1} · β̂_{t+1}
        scratch = xp.empty((batch, positions), dtype=work)
        total = xp.empty((batch,), dtype=work)
        tiny = np.finfo(work).tiny
        for t in range(time - 1, -1, -1):
            current = beta[t, :, :positions]
            if t < time - 1:
                xp.multiply(self.emission[t + 1], beta[t + 1, :, :positions], out=step[:, :positions])
                xp.add(step[:, :positions], step[:, 1:positions + 1], out=current)
                xp.multiply(step[:, 2:], skip_next[:, 2:], out=scratch)
                current += scratch
                current.sum(axis=1, out=total)
                xp.maximum(total, tiny, out=total)
                current /= total[:, None]
            if t in ends:
                xp.copyto(current, end_start, where=ends[t])
        beta = beta[:, :, :positions]

        # Occupancy exp(α_t(s) + β_t(s) - log p) = α̂_t(s)β̂_t(s) / Σ_s' α̂_t(s')β̂_t(s'), as
        # (batch, time, 2S+1). An impossible target makes the sum 0 and the occupancy 0/0 = NaN
        # within the sample's frames (torch gives NaN there too), or 0 under zero_infinity.
        product = self.alpha * beta
        norm = product.sum(axis=2, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):  # the 0/0 just described
            occupancy = (product / norm).transpose(1, 0, 2)
        if self.zero_infinity:
            occupancy = xp.where(self.infinite[:, None, None], 0.0, occupancy)
        # Σ over the positions s that carry class k: one batched product with a one-hot matrix
        # (no scatter-add), (batch, time, 2S+1) @ (batch, 2S+1, classes).
        one_hot = (self.extended[:, :, None] == xp.arange(classes)[None, None, :]).astype(work)
        gx = -(occupancy @ one_hot).astype(dtype)
        frames = xp.arange(time)[None, :, None] < xp.asarray(self.input_lengths)[:, None, None]
        gx = xp.where(frames, gx, dtype.type(0))  # exactly 0 past the input, even for NaN rows

        if self.reduction == "none":
            weight = gy
        elif self.reduction == "sum":
            weight = xp.broadcast_to(gy, (batch,))
        else:
            weight = gy / (xp.maximum(target_lengths, 1).astype(dtype) * batch)
        if self.zero_infinity:
            weight = xp.where(self.infinite, dtype.type(0), weight)
        return gx * weight[:, None, None].astype(dtype, copy=False)


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
