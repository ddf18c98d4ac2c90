"""The math environment's scorers, as scorer_for finds them once it is registered."""

from __future__ import annotations

import pytest

from tentalis.envs.math import LenientMathScorer, MathVerifier
from tentalis.errors import ScoringError
from tentalis.rewards import FormatScorer, scorer_for


async def test_math_default_is_verifier_and_format(make_result) -> None:
    scorer = scorer_for("math")
    task, result = make_result(
        "<step>3 + 4 = 7</step>\n<step>Tom has 7.</step>\nAnswer: 7\nextra text"
    )
    scores = await scorer.score(task, result)
    # verifier: outcome 1, steps [1, 0.5]; format: outcome 0.9, steps [1, 1]
    assert scores.outcome_score == pytest.approx(0.8 * 1.0 + 0.2 * 0.9)
    assert scores.step_scores == pytest.approx([1.0, 0.8 * 0.5 + 0.2 * 1.0])
    assert scores.details["components"] == pytest.approx({"verifier": 1.0, "format": 0.9})


def test_scorer_for_specs() -> None:
    assert isinstance(scorer_for("math", "lenient"), LenientMathScorer)
    assert isinstance(scorer_for("math", "verifier"), MathVerifier)
    assert isinstance(scorer_for("math", "format"), FormatScorer)
    assert scorer_for("math") is not scorer_for("math")  # a fresh scorer each call
    with pytest.raises(ScoringError, match="known"):
        scorer_for("chess")
    with pytest.raises(ScoringError, match="lenient"):
        scorer_for("math", "nope")
