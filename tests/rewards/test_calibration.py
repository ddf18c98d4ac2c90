"""Calibration metrics against hand-computed cases."""

from __future__ import annotations

import math

import pytest

from tentalis.rewards.calibration import (
    Agreement,
    expected_calibration_error,
    rankdata,
    reliability_bins,
    spearman,
    thresholded_accuracy,
)


def test_ranks_average_ties() -> None:
    assert rankdata([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]


def test_spearman_hand_computed() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks x = 1 2 3 4, y = 1 3 2 4: d² = 0 1 1 0 → ρ = 1 − 6·2 / (4·15) = 0.8
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # with ties: x ranks 1 2.5 2.5 4, y = 0 0 1 1 → ranks 1.5 1.5 3.5 3.5
    # dx = -1.5 0 0 1.5, dy = -1 -1 1 1 → Σdxdy = 3, Σdx² = 4.5, Σdy² = 4 → 3 / √18
    assert spearman([0.1, 0.5, 0.5, 0.9], [0, 0, 1, 1]) == pytest.approx(3 / math.sqrt(18))
    assert math.isnan(spearman([1, 1, 1], [0, 1, 0]))
    assert math.isnan(spearman([1], [1]))
    with pytest.raises(ValueError):
        spearman([1, 2], [1])


def test_ece_hand_computed() -> None:
    # bin 0.9-1.0: scores .9 .95 (mean .925), labels 1 0 (mean .5) → gap .425, weight 2/4
    # bin 0.1-0.2: scores .1 .1 (mean .1), labels 0 0 → gap .1, weight 2/4
    scores, labels = [0.9, 0.95, 0.1, 0.1], [1, 0, 0, 0]
    assert expected_calibration_error(scores, labels) == pytest.approx(0.5 * 0.425 + 0.5 * 0.1)
    assert expected_calibration_error([1.0, 0.0], [1, 0]) == pytest.approx(0.0)
    assert expected_calibration_error([1.0, 1.0], [0, 0]) == pytest.approx(1.0)
    assert math.isnan(expected_calibration_error([], []))


def test_bins_and_accuracy() -> None:
    bins = reliability_bins([0.0, 0.05, 0.5, 1.0], [0, 1, 1, 1])
    assert [b.count for b in bins] == [2, 0, 0, 0, 0, 1, 0, 0, 0, 1]
    assert bins[0].frac_positive == 0.5 and math.isnan(bins[1].mean_score)
    assert thresholded_accuracy([0.9, 0.2, 0.5, 0.4], [1, 0, 0, 1]) == 0.5
    a = Agreement.of([1.0, 0.0, 1.0], [1, 0, 0])
    assert (a.n, a.positives, a.accuracy) == (3, 1, pytest.approx(2 / 3))
