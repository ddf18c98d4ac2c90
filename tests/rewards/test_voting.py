"""Majority voting over m judgements, checked by hand."""

from __future__ import annotations

import pytest

from tentalis.rewards.voting import aggregate_votes


def test_majority_vote() -> None:
    v = aggregate_votes([1.0, 1.0, 0.0])
    assert v is not None and v.score == 1.0 and v.agreement == pytest.approx(2 / 3)
    v = aggregate_votes([0.0, 1.0, 0.0, 0.0])
    assert v is not None and v.score == 0.0 and v.agreement == 0.75 and v.positive == 1


def test_tie_is_neutral_and_unanimity_is_full_agreement() -> None:
    tie = aggregate_votes([1.0, 0.0])
    assert tie is not None and tie.score == 0.5 and tie.agreement == 0.5
    all_yes = aggregate_votes([0.9, 0.6, 1.0])
    assert all_yes is not None and all_yes.score == 1.0 and all_yes.agreement == 1.0


def test_mean() -> None:
    v = aggregate_votes([1.0, 0.0, 0.5, 1.0], "mean")
    assert v is not None and v.score == pytest.approx(0.625)
    assert v.agreement == 0.75  # 0.5 counts as positive (>= threshold)


def test_no_votes_and_bad_method() -> None:
    assert aggregate_votes([]) is None
    with pytest.raises(ValueError, match="unknown aggregate"):
        aggregate_votes([1.0], "median")  # type: ignore[arg-type]
