"""Regex verifiers: an answer that must match a pattern, and weighted format rules.

Patterns come from the task author (trusted); the text they run on is the worker's
(untrusted), so it is cut to :data:`MAX_TEXT` characters first. A pattern that does not
compile is a task problem and raises :class:`ScoringError`; worker text never does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from tentalis.errors import ScoringError
from tentalis.events import ResultEvent, TaskEvent
from tentalis.rewards.base import StepScores
from tentalis.steps.answers import final_answer_of

MAX_TEXT = 20_000
Target = Literal["answer", "text", "steps"]


def _compile(pattern: str, flags: int, who: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise ScoringError(f"{who}: pattern {pattern!r} does not compile: {exc}") from exc


class RegexVerifier:
    """Outcome 1.0 when the final answer *fully* matches a pattern, else 0.0.

    The pattern is ``pattern`` when given, else the task's ``metadata["answer_pattern"]``.
    With ``step_pattern`` each step scores 1.0 when the pattern is found in it, else 0.0;
    without one the verifier abstains on steps (empty ``step_scores``).
    """

    def __init__(
        self,
        pattern: str | None = None,
        *,
        step_pattern: str | None = None,
        flags: int = re.IGNORECASE,
        name: str = "regex",
    ) -> None:
        self.name = name
        self.flags = flags
        self.pattern = _compile(pattern, flags, name) if pattern is not None else None
        self.step_pattern = _compile(step_pattern, flags, name) if step_pattern else None

    def _pattern_for(self, task: TaskEvent) -> re.Pattern[str]:
        if self.pattern is not None:
            return self.pattern
        raw = task.metadata.get("answer_pattern")
        if not isinstance(raw, str):
            raise ScoringError(
                f"{self.name}: task {task.task_id} has no metadata['answer_pattern'] and the "
                "verifier was built without a pattern"
            )
        return _compile(raw, self.flags, self.name)

    async def score(self, task: TaskEvent, result: ResultEvent) -> StepScores:
        pattern = self._pattern_for(task)
        answer = final_answer_of(result)
        matched = answer is not None and pattern.fullmatch(answer.strip()[:MAX_TEXT]) is not None
        steps: list[float] = []
        if self.step_pattern is not None:
            steps = [1.0 if self.step_pattern.search(s[:MAX_TEXT]) else 0.0 for s in result.steps]
        return StepScores(
            steps, 1.0 if matched else 0.0,
            {"matched": matched, "final_answer": answer, "pattern": pattern.pattern},
        )  # fmt: skip


@dataclass(frozen=True)
class RegexRule:
    """One format rule: ``pattern`` must (``must_match``) or must not be found in the
    ``target`` — the whole text, the final answer, or every step."""

    name: str
    pattern: str
    weight: float = 1.0
    must_match: bool = True
    target: Target = "text"

    def holds(self, compiled: re.Pattern[str], result: ResultEvent) -> bool:
        if self.target == "steps":
            texts = list(result.steps)
            found = bool(texts) and all(compiled.search(t[:MAX_TEXT]) for t in texts)
        else:
            text = result.raw_text if self.target == "text" else final_answer_of(result)
            found = text is not None and compiled.search(text[:MAX_TEXT]) is not None
        return found if self.must_match else not found


class FormatRuleScorer:
    """Outcome: the weighted share of :class:`RegexRule` s that hold.

    Per step: the share of ``steps``-target rules the step satisfies (abstains, i.e. empty,
    when there are no such rules).
    """

    def __init__(self, rules: Sequence[RegexRule], *, name: str = "format_rules") -> None:
        if not rules or any(r.weight < 0 for r in rules) or sum(r.weight for r in rules) <= 0:
            raise ValueError("FormatRuleScorer needs rules with weights >= 0 and a positive sum")
        if len({r.name for r in rules}) != len(rules):
            raise ValueError("rule names must be unique")
        self.name = name
        self.rules = list(rules)
        self._compiled = [_compile(r.pattern, re.IGNORECASE | re.MULTILINE, name) for r in rules]

    async def score(self, task: TaskEvent, result: ResultEvent) -> StepScores:
        pairs = list(zip(self.rules, self._compiled, strict=True))
        verdicts = {r.name: r.holds(c, result) for r, c in pairs}
        total = sum(r.weight for r in self.rules)
        outcome = sum(r.weight for r in self.rules if verdicts[r.name]) / total
        step_rules = [(r, c) for r, c in pairs if r.target == "steps"]
        steps = [
            sum((c.search(s[:MAX_TEXT]) is not None) == r.must_match for r, c in step_rules)
            / len(step_rules)
            for s in result.steps
        ] if step_rules else []  # fmt: skip
        return StepScores(steps, min(1.0, outcome), {"rules": verdicts})
