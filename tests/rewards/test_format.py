"""FormatScorer's partial credit, case by case."""

from __future__ import annotations

import pytest

from tentalis.rewards import FormatScorer


@pytest.mark.parametrize(
    ("text", "outcome", "steps"),
    [
        # tags 0.4 + answer line 0.3 + non-empty 0.2 + nothing after 0.1
        ("<step>3 + 4 = 7</step>\n<step>so 7</step>\nAnswer: 7", 1.0, [1.0, 1.0]),
        ("<step>3 + 4 = 7</step>\nAnswer: 7\n<|im_end|>", 1.0, [1.0]),
        ("<step>3 + 4 = 7</step>\nAnswer: 7\nHope this helps!", 0.9, [1.0]),
        ("<step>3 + 4 = 7</step>\n<step>so 7</step>", 0.6, [1.0, 1.0]),
        ("<step>3 + 4 = 7</step><step></step>\nAnswer: 7", 0.8, [1.0]),
        ("<step>3 + 4 = 7</step><step>so 7\nAnswer: 7", 0.8, [1.0, 0.5]),  # unclosed: 0.2
        ("Step 1: 3 + 4 = 7\nAnswer: 7", 0.4, [0.5]),
        ("The answer is 7.", 0.0, []),
        ("", 0.0, []),
    ],
)
async def test_format_scorer(make_result, text: str, outcome: float, steps: list[float]) -> None:
    task, result = make_result(text)
    scores = await FormatScorer().score(task, result)
    assert scores.outcome_score == pytest.approx(outcome)
    assert scores.step_scores == steps


async def test_format_scorer_details_name_each_check(make_result) -> None:
    task, result = make_result("<step>a</step>\nAnswer: 7\nmore")
    details = (await FormatScorer().score(task, result)).details
    assert details == {
        "tags": 0.4,
        "answer_line": 0.3,
        "nonempty_steps": 0.2,
        "nothing_after_answer": 0.0,
    }
