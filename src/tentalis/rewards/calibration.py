"""How well a scorer (the judge) agrees with ground truth (the verifier): pure numpy.

For scores ``s_i`` in [0, 1] and binary labels ``y_i`` (1 = the verifier says correct):

* accuracy of the thresholded score: ``mean(1[s_i >= t] == y_i)``, ``t = 0.5``;
* Spearman ρ: Pearson correlation of the ranks of ``s`` and ``y`` (tied values share their
  average rank); NaN when either side is constant (ρ is undefined then);
* ECE by decile: bins ``[0, .1), [.1, .2), …, [.9, 1]``;
  ``ECE = Σ_b (n_b / N) · |mean(y in b) − mean(s in b)|`` over the non-empty bins.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

THRESHOLD = 0.5
N_BINS = 10


def rankdata(x: Sequence[float]) -> np.ndarray:
    """1-based ranks of ``x``; tied values get the mean of the ranks they span."""
    a = np.asarray(x, dtype=float)
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(len(a), dtype=float)
    sorted_a = a[order]
    i = 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and sorted_a[j + 1] == sorted_a[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's ρ of paired samples (NaN when undefined: fewer than 2, or a constant side)."""
    if len(x) != len(y):
        raise ValueError(f"need paired samples, got {len(x)} and {len(y)}")
    if len(x) < 2:
        return math.nan
    rx, ry = rankdata(x), rankdata(y)
    dx, dy = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float((dx * dx).sum() * (dy * dy).sum()))
    return float((dx * dy).sum() / denom) if denom > 0 else math.nan


@dataclass(frozen=True)
class Bin:
    """One bin of a reliability diagram."""

    lo: float
    hi: float
    count: int
    mean_score: float  # NaN when empty
    frac_positive: float  # NaN when empty


def reliability_bins(
    scores: Sequence[float], labels: Sequence[int], n_bins: int = N_BINS
) -> list[Bin]:
    """Equal-width bins over [0, 1]; the last bin includes 1.0."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=float)
    idx = np.minimum((s * n_bins).astype(int), n_bins - 1)
    bins = []
    for b in range(n_bins):
        mask = idx == b
        n = int(mask.sum())
        bins.append(Bin(b / n_bins, (b + 1) / n_bins, n,
                        float(s[mask].mean()) if n else math.nan,
                        float(y[mask].mean()) if n else math.nan))
    return bins


def expected_calibration_error(
    scores: Sequence[float], labels: Sequence[int], n_bins: int = N_BINS
) -> float:
    """ECE over equal-width bins (NaN for no samples); see the module docstring."""
    if len(scores) == 0:
        return math.nan
    total = len(scores)
    return float(sum(b.count / total * abs(b.frac_positive - b.mean_score)
                     for b in reliability_bins(scores, labels, n_bins) if b.count))


def thresholded_accuracy(
    scores: Sequence[float], labels: Sequence[int], threshold: float = THRESHOLD
) -> float:
    """Share of samples where ``score >= threshold`` matches the label (NaN for none)."""
    if len(scores) == 0:
        return math.nan
    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=int)
    return float(((s >= threshold).astype(int) == y).mean())


@dataclass(frozen=True)
class Agreement:
    """Judge vs verifier on one kind of item (steps or outcomes)."""

    n: int
    positives: int
    accuracy: float
    spearman: float
    ece: float
    bins: list[Bin]

    @classmethod
    def of(cls, scores: Sequence[float], labels: Sequence[int]) -> Agreement:
        return cls(
            n=len(scores),
            positives=int(sum(labels)),
            accuracy=thresholded_accuracy(scores, labels),
            spearman=spearman(scores, labels),
            ece=expected_calibration_error(scores, labels),
            bins=reliability_bins(scores, labels),
        )
