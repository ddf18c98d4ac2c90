import pytest

from tentalis.demo.stats import percentile, wilson_interval


def test_wilson_matches_hand_computed_value() -> None:
    # p = 0.5, n = 20: centre = (0.5 + 1.96²/40) / (1 + 1.96²/20) = 0.5
    # half = 1.96·sqrt(0.25/20 + 1.96²/1600) / 1.19208 = 0.20069
    lo, hi = wilson_interval(10, 20)
    assert lo == pytest.approx(0.2993, abs=1e-3)
    assert hi == pytest.approx(0.7007, abs=1e-3)


def test_wilson_at_the_edges_stays_in_unit_interval_and_is_not_degenerate() -> None:
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and 0.2 < hi < 0.35
    lo, hi = wilson_interval(10, 10)
    assert 0.65 < lo < 0.8 and hi == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_percentile_interpolates() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 99) == 5
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90) == pytest.approx(9.1)
