"""ExactMatchVerifier: normalised string answers against the ground truth."""

from __future__ import annotations

from tentalis.rewards import ExactMatchVerifier


async def test_exact_match(make_result) -> None:
    task, result = make_result("<step>capital</step>\nAnswer: **Paris**.", answer="paris")
    scores = await ExactMatchVerifier().score(task, result)
    assert scores.outcome_score == 1.0 and scores.step_scores == []
    strict = ExactMatchVerifier(case_sensitive=True)
    assert (await strict.score(task, result)).outcome_score == 0.0
    task, other = make_result("Answer: 7.0", answer="7")
    assert (await ExactMatchVerifier().score(task, other)).outcome_score == 0.0  # strings
