"""MathVerifier and the arithmetic claim checker under it; verifiers need ground truth."""

from __future__ import annotations

import pytest

from tentalis.envs.math import MathVerifier, claim_score, find_claims
from tentalis.errors import ScoringError
from tentalis.rewards import ExactMatchVerifier, StepScorer


@pytest.mark.parametrize(
    ("step", "score"),
    [
        ("12 + 7 = 19", 1.0),
        ("3*4=12", 1.0),
        ("20 / 5 = 4", 1.0),
        ("15 - 6 = 9", 1.0),
        ("3 × 4 = 12", 1.0),
        ("20 ÷ 5 = 4", 1.0),
        ("15 − 6 = 9", 1.0),
        ("6 x 7 = 42", 1.0),
        ("(3 + 4) * 2 = 14", 1.0),
        ("3 + 4 * 2 = 11", 1.0),  # precedence
        ("$12 × 3 = $36 in total", 1.0),
        ("1,200 + 300 = 1,500", 1.0),
        ("3 - 5 = -2", 1.0),
        ("10 / 3 = 3.33", 1.0),  # rounded to the decimals written
        ("Total = 4 * 5 = 20 apples.", 1.0),
        ("3 + 4 = 7 + 2 = 9", 1.0),  # a running chain: 3 + 4 = 7 and 7 + 2 = 9
        ("12 + 7 = 20", 0.0),
        ("15 − 6 = 8", 0.0),
        ("7 / 2 = 3", 0.0),  # integers must be exact
        ("5 / 0 = 0", 0.0),
        ("so 12+7=19 and 3*3=10", 0.0),  # one false claim is enough
        ("Sam has 12 apples and buys 7 more.", 0.5),
        ("x = 5", 0.5),
        ("2^3 = 8", 0.5),  # unsupported operator: no claim
        ("", 0.5),
    ],
)
def test_claim_score(step: str, score: float) -> None:
    assert claim_score(step) == score


def test_find_claims_reports_the_actual_value() -> None:
    [claim] = find_claims("so 12 + 7 = 20.")
    assert (claim.expression, claim.value, claim.actual, claim.correct) == ("12 + 7", 20, 19, False)


async def test_math_verifier_correct_answer_with_step_checks(make_result) -> None:
    verifier = MathVerifier()
    assert isinstance(verifier, StepScorer) and verifier.name == "verifier"
    task, result = make_result(
        "<step>Tom has 3 apples and gets 4 more.</step>\n<step>3 + 4 = 7</step>\n"
        "<step>3 + 4 = 8</step>\nAnswer: 7"
    )
    scores = await verifier.score(task, result)
    assert scores.outcome_score == 1.0
    assert scores.step_scores == [0.5, 1.0, 0.0]
    assert scores.details["claims_checked"] == 2 and scores.details["claims_false"] == 1


async def test_math_verifier_wrong_or_missing_answer(make_result) -> None:
    verifier = MathVerifier()
    task, wrong = make_result("<step>3 + 4 = 7</step>\nAnswer: 8")
    assert (await verifier.score(task, wrong)).outcome_score == 0.0
    task, missing = make_result("<step>3 + 4 = 7</step>")
    scores = await verifier.score(task, missing)
    assert scores.outcome_score == 0.0 and scores.step_scores == [1.0]
    task, empty = make_result("")
    scores = await verifier.score(task, empty)
    assert scores.outcome_score == 0.0 and scores.step_scores == []


async def test_math_verifier_reparses_when_the_worker_set_no_answer(make_result) -> None:
    task, result = make_result("<step>3 + 4 = 7</step>\nAnswer: 7", final_answer=None)
    assert (await MathVerifier().score(task, result)).outcome_score == 1.0


async def test_verifiers_need_ground_truth(make_result) -> None:
    task, result = make_result("Answer: 7", answer=None)
    with pytest.raises(ScoringError, match="ground-truth"):
        await MathVerifier().score(task, result)
    with pytest.raises(ScoringError, match="ground-truth"):
        await ExactMatchVerifier().score(task, result)


@pytest.mark.timeout(10)
def test_claim_checking_is_linear_on_adversarial_text() -> None:
    for text in [
        "1+" * 10_000 + "=",
        ("1+" * 30 + "1=31 ") * 300,
        "(" * 5_000 + "1+1" + ")" * 5_000 + "=2",
    ]:
        find_claims(text)  # took minutes (and could recurse deeply) before the run was capped
