"""Regex verifier and format rules."""

from __future__ import annotations

import pytest

from tentalis.errors import ScoringError
from tentalis.events import ResultEvent, TaskEvent
from tentalis.rewards.regex import FormatRuleScorer, RegexRule, RegexVerifier
from tentalis.steps.parsing import parse_steps


def _result(text: str, task: TaskEvent) -> ResultEvent:
    parsed = parse_steps(text)
    return ResultEvent(task_id=task.task_id, task=task, worker_id="w", raw_text=text,
                       steps=parsed.steps, final_answer=parsed.final_answer)  # fmt: skip


async def test_answer_must_fully_match_the_tasks_pattern() -> None:
    task = TaskEvent(prompt="A date?", answer="2024-01-02",
                     metadata={"answer_pattern": r"\d{4}-\d{2}-\d{2}"})  # fmt: skip
    verifier = RegexVerifier(step_pattern=r"\d")
    good = await verifier.score(task, _result("<step>It is 2024.</step>\nAnswer: 2024-01-02", task))
    assert good.outcome_score == 1.0 and good.step_scores == [1.0]
    bad = await verifier.score(task, _result("<step>no idea</step>\nAnswer: 2024-01-02 ok", task))
    assert bad.outcome_score == 0.0 and bad.step_scores == [0.0]
    none = await verifier.score(task, _result("", task))
    assert none.outcome_score == 0.0


async def test_bad_or_missing_patterns_are_task_errors() -> None:
    with pytest.raises(ScoringError, match="does not compile"):
        RegexVerifier("(")
    task = TaskEvent(prompt="x", answer="y")
    with pytest.raises(ScoringError, match="answer_pattern"):
        await RegexVerifier().score(task, _result("Answer: y", task))


async def test_format_rules_give_the_weighted_share_that_holds() -> None:
    scorer = FormatRuleScorer([
        RegexRule("tags", r"<step>", 2.0),
        RegexRule("no_apology", r"\bsorry\b", 1.0, must_match=False),
        RegexRule("short_steps", r"^.{1,20}$", 1.0, target="steps"),
    ])  # fmt: skip
    task = TaskEvent(prompt="x", answer="y")
    text = "<step>short</step><step>this step is far too long to pass</step> sorry"
    scores = await scorer.score(task, _result(text, task))
    assert scores.outcome_score == pytest.approx(2.0 / 4.0)
    assert scores.step_scores == [1.0, 0.0]
    assert scores.details["rules"] == {"tags": True, "no_apology": False, "short_steps": False}
    with pytest.raises(ValueError):
        FormatRuleScorer([])
