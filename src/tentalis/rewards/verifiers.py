"""Verifiers: scorers that check a result against the task's ground truth.

``MathVerifier`` is the strict reward and the evaluation metric (the same code, so the two
cannot drift apart). ``ExactMatchVerifier`` is for answers that are strings.
"""

from __future__ import annotations

import math
import re

from tentalis.agents.parsing import clean_answer, extract_number, parse_steps
from tentalis.errors import ScoringError
from tentalis.events import ResultEvent, TaskEvent
from tentalis.rewards.arithmetic import claim_score, find_claims
from tentalis.rewards.base import StepScores


def normalise_answer(text: str) -> str:
    """Lower case, markdown and trailing punctuation stripped, whitespace collapsed."""
    return re.sub(r"\s+", " ", clean_answer(text)).strip().lower()


def numbers_equal(a: float, b: float) -> bool:
    """Equal within a relative tolerance of 1e-6 (absolute 1e-9 around zero)."""
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def answers_match(answer: str | None, truth: str) -> bool:
    """True when ``answer`` states ``truth``: numerically when both hold a number (the last
    one: ``"12 apples"`` and ``"5 + 7 = 12"`` both state 12), else exactly after
    :func:`normalise_answer`."""
    if answer is None:
        return False
    a, t = extract_number(answer), extract_number(truth)
    if a is not None and t is not None:
        return numbers_equal(a, t)
    return normalise_answer(answer) == normalise_answer(truth)


def final_answer_of(result: ResultEvent) -> str | None:
    """The result's parsed final answer; re-parsed from the raw text if the worker set none."""
    if result.final_answer is not None:
        return result.final_answer
    return parse_steps(result.raw_text).final_answer


def ground_truth(task: TaskEvent, scorer: str) -> str:
    if task.answer is None or not task.answer.strip():
        raise ScoringError(
            f"{scorer}: task {task.task_id} has no ground-truth answer; verifiers need "
            "TaskEvent.answer (use a judge scorer for open-ended tasks)"
        )
    return task.answer


class MathVerifier:
    """Strict math reward: is the final answer right, and is each step's arithmetic right?

    * outcome: 1.0 when the final answer equals the ground truth (:func:`answers_match`),
      else 0.0 (also when there is no final answer).
    * step ``i``: 1.0 when every arithmetic claim in it holds (``12 + 7 = 19``), 0.0 when
      any claim is false, 0.5 (neutral) when it makes no checkable claim — a step of prose
      is neither rewarded nor punished. See :mod:`tentalis.rewards.arithmetic`.

    A task without a ground-truth answer raises :class:`ScoringError` (a task problem, not
    a worker's); bad worker output only ever lowers the scores.
    """

    name = "verifier"

    async def score(self, task: TaskEvent, result: ResultEvent) -> StepScores:
        truth = ground_truth(task, self.name)
        answer = final_answer_of(result)
        correct = answers_match(answer, truth)
        claims = [find_claims(step) for step in result.steps]
        return StepScores(
            step_scores=[claim_score(step) for step in result.steps],
            outcome_score=1.0 if correct else 0.0,
            details={
                "correct": correct,
                "final_answer": answer,
                "expected": truth,
                "claims_checked": sum(len(c) for c in claims),
                "claims_false": sum(not x.correct for c in claims for x in c),
            },
        )


class ExactMatchVerifier:
    """Outcome 1.0 when the final answer equals the ground truth after normalisation
    (case-insensitive unless ``case_sensitive``), else 0.0. It has no per-step opinion:
    ``step_scores`` is empty, which :class:`WeightedScorer` reads as "abstain"."""

    def __init__(self, *, case_sensitive: bool = False, name: str = "exact_match") -> None:
        self.case_sensitive = case_sensitive
        self.name = name

    def _norm(self, text: str) -> str:
        text = re.sub(r"\s+", " ", clean_answer(text)).strip()
        return text if self.case_sensitive else text.lower()

    async def score(self, task: TaskEvent, result: ResultEvent) -> StepScores:
        truth = ground_truth(task, self.name)
        answer = final_answer_of(result)
        correct = answer is not None and self._norm(answer) == self._norm(truth)
        return StepScores(
            step_scores=[],
            outcome_score=1.0 if correct else 0.0,
            details={"correct": correct, "final_answer": answer, "expected": truth},
        )
