"""WeightedScorer against hand-computed numbers."""

from __future__ import annotations

import pytest

from tentalis.events import ResultEvent, TaskEvent
from tentalis.rewards import StepScorer, StepScores, WeightedScorer


class Fixed:
    """A scorer that always returns the same scores."""

    def __init__(self, name: str, outcome: float, steps: list[float]) -> None:
        self.name = name
        self.outcome = outcome
        self.steps = steps

    async def score(self, task: TaskEvent, result: ResultEvent) -> StepScores:
        return StepScores(list(self.steps), self.outcome, {"seen": True})


async def test_weighted_by_hand(make_result) -> None:
    task, result = make_result("<step>a</step><step>b</step>\nAnswer: 7")
    a = Fixed("a", 1.0, [1.0, 0.0])
    b = Fixed("b", 0.0, [0.5, 0.5])
    c = Fixed("c", 0.5, [])  # abstains on steps
    scorer = WeightedScorer({a: 3.0, b: 1.0, c: 4.0}, name="mix")
    assert isinstance(scorer, StepScorer) and scorer.name == "mix"
    scores = await scorer.score(task, result)
    # weights normalise to 3/8, 1/8, 4/8
    assert scores.outcome_score == pytest.approx(3 / 8 * 1.0 + 1 / 8 * 0.0 + 4 / 8 * 0.5)
    # steps: only a and b vote, weights 3 and 1
    assert scores.step_scores == pytest.approx([(3 * 1.0 + 0.5) / 4, (3 * 0.0 + 0.5) / 4])
    assert scores.details["components"] == {"a": 1.0, "b": 0.0, "c": 0.5}
    assert scores.details["weights"] == pytest.approx({"a": 0.375, "b": 0.125, "c": 0.5})
    assert scores.details["step_voters"] == ["a", "b"]
    assert scores.details["component_details"]["a"] == {"seen": True}


async def test_weighted_accepts_pairs_and_ignores_mismatched_step_lists(make_result) -> None:
    task, result = make_result("<step>a</step><step>b</step>")
    wrong_length = Fixed("w", 1.0, [1.0])
    scorer = WeightedScorer([(wrong_length, 1.0), (Fixed("b", 0.0, [0.2, 0.4]), 1.0)])
    scores = await scorer.score(task, result)
    assert scores.outcome_score == pytest.approx(0.5)
    assert scores.step_scores == pytest.approx([0.2, 0.4])


async def test_weighted_without_step_voters_has_no_step_scores(make_result) -> None:
    task, result = make_result("<step>a</step>")
    scores = await WeightedScorer([(Fixed("c", 1.0, []), 1.0)]).score(task, result)
    assert scores.step_scores == [] and scores.outcome_score == 1.0


def test_weighted_validates() -> None:
    with pytest.raises(ValueError, match="at least one"):
        WeightedScorer([])
    with pytest.raises(ValueError, match="unique"):
        WeightedScorer([(Fixed("a", 1, []), 1.0), (Fixed("a", 1, []), 1.0)])
    with pytest.raises(ValueError, match="weights"):
        WeightedScorer([(Fixed("a", 1, []), -1.0), (Fixed("b", 1, []), 2.0)])
    with pytest.raises(ValueError, match="weights"):
        WeightedScorer([(Fixed("a", 1, []), 0.0)])
