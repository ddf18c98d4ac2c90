"""The guard's statistics as small pure functions (numbers in, numbers out).

* length drift ``z = (mean(window) − μ_b) / max(σ_b, 1)``: how many baseline standard
  deviations the window's *mean* length moved. The per-sample σ (not the standard error
  σ/√n) is deliberate: training is meant to change the policy, and only a shift as large as
  the baseline's whole spread is suspicious. The floor of one token keeps a baseline of
  equal lengths from dividing by zero.
* reward histogram over [0, 1] with ``bins`` equal bins (1.0 falls in the last) and
  ``alpha`` pseudo-counts per bin: ``p_i = (c_i + α) / (n + α·B)`` — never zero, so
* ``KL(P ‖ Q) = Σ_i p_i · ln(p_i / q_i)`` is always finite (nats).
* Spearman ρ: the Pearson correlation of the ranks (ties get their average rank);
  None when either side is constant (ρ is undefined).
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation; ValueError on an empty sequence."""
    if not values:
        raise ValueError("mean_std of an empty sequence")
    m = sum(values) / len(values)
    var = sum((v - m) ** 2 for v in values) / len(values)
    return m, math.sqrt(var)


def length_z(window: Sequence[float], base_mean: float, base_std: float) -> float:
    """Signed drift of the window's mean length in baseline standard deviations."""
    m, _ = mean_std(window)
    return (m - base_mean) / max(base_std, 1.0)


def histogram(values: Sequence[float], bins: int, alpha: float) -> list[float]:
    """Smoothed probability histogram of values in [0, 1] (values outside are clipped)."""
    if bins < 2 or alpha <= 0:
        raise ValueError(f"histogram needs bins >= 2 and alpha > 0, got {bins}, {alpha}")
    counts = [0.0] * bins
    for v in values:
        i = int(min(max(v, 0.0), 1.0) * bins)
        counts[min(i, bins - 1)] += 1
    total = len(values) + alpha * bins
    return [(c + alpha) / total for c in counts]


def kl_divergence(p: Sequence[float], q: Sequence[float]) -> float:
    """``Σ p_i ln(p_i / q_i)`` in nats; terms with ``p_i = 0`` contribute 0."""
    if len(p) != len(q):
        raise ValueError(f"distributions differ in length: {len(p)} vs {len(q)}")
    total = 0.0
    for pi, qi in zip(p, q, strict=True):
        if pi > 0:
            if qi <= 0:
                return math.inf
            total += pi * math.log(pi / qi)
    return max(total, 0.0)


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation, or None when it is undefined (n < 2, a constant side)."""
    if len(x) != len(y):
        raise ValueError(f"spearman needs paired samples, got {len(x)} and {len(y)}")
    if len(x) < 2:
        return None
    rx, ry = _ranks(x), _ranks(y)
    mx, sx = mean_std(rx)
    my, sy = mean_std(ry)
    if sx == 0 or sy == 0:
        return None
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True)) / len(rx)
    return cov / (sx * sy)


def mean_abs_gap(x: Sequence[float], y: Sequence[float]) -> float:
    """``mean |x_i − y_i|`` over paired samples."""
    if len(x) != len(y) or not x:
        raise ValueError(f"mean_abs_gap needs equal non-empty samples, got {len(x)}, {len(y)}")
    return sum(abs(a - b) for a, b in zip(x, y, strict=True)) / len(x)
