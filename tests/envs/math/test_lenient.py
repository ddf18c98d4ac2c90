"""LenientMathScorer's formula, case by case."""

from __future__ import annotations

import pytest

from tentalis.envs.math import LenientMathScorer


@pytest.mark.parametrize(
    ("text", "outcome", "appears", "correct", "stated"),
    [
        # 0.4 appears + 0.4 correct + 0.2 stated - 0.1 no_steps, clipped to [0, 1]
        ("<step>3 + 4 = 7</step>\nAnswer: 7", 1.0, True, True, True),
        ("Answer: 7", 0.9, True, True, True),  # no steps
        ("<step>3 + 4 = 7</step>\nAnswer: 8", 0.4, True, False, False),
        # correct as the verifier reads it, but not on an Answer: line
        ("<step>3 + 4 = 7</step>\nThe answer is 7", 0.8, True, True, False),
        ("<step>3 + 4 = 7</step>\n\\boxed{7}", 0.8, True, True, False),
        ("<step>3 + 4 = 7</step>\n#### 7", 0.8, True, True, False),
        # 7 appears but the stated answer is 2: what the verifier counts is wrong
        ("<step>3 + 4 = 7</step>\n#### 2", 0.4, True, False, False),
        ("I think it is 7", 0.3, True, False, False),
        ("<step>3 + 4 = 8</step>\nAnswer: 8", 0.0, False, False, False),
        ("no idea", 0.0, False, False, False),  # 0 - 0.1 clipped to 0
        ("", 0.0, False, False, False),
    ],
)
async def test_lenient_formula(
    make_result, text: str, outcome: float, appears: bool, correct: bool, stated: bool
) -> None:
    task, result = make_result(text)
    scores = await LenientMathScorer().score(task, result)
    assert scores.outcome_score == pytest.approx(outcome)
    details = scores.details
    assert (details["appears"], details["correct"], details["stated"]) == (
        appears, correct, stated)


async def test_lenient_step_scores_check_arithmetic(make_result) -> None:
    task, result = make_result("<step>3 + 4 = 7</step><step>7 * 2 = 15</step><step>ok</step>")
    scores = await LenientMathScorer().score(task, result)
    assert scores.step_scores == [1.0, 0.0, 0.5]


async def test_lenient_gives_no_appears_credit_to_a_cut_off_answer(make_result) -> None:
    text = "<step>Tom has 3 apples and gets 4, so 3 + 4 = 7 and then we also"
    _, finished = make_result(text, finish_reason="stop")
    task, cut = make_result(text, finish_reason="length")
    assert (await LenientMathScorer().score(task, finished)).outcome_score == pytest.approx(0.4)
    scores = await LenientMathScorer().score(task, cut)
    assert scores.outcome_score == 0.0
    assert scores.details["cut_off"] and not scores.details["appears"]
    # a stated answer is still credited (the cut came after it)
    _, stated = make_result("<step>3 + 4 = 7</step>\nAnswer: 7\nand so", finish_reason="length")
    assert (await LenientMathScorer().score(task, stated)).outcome_score == pytest.approx(0.6)
