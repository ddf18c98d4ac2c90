"""``ExactMatchVerifier``: a string answer checked against the task's ground truth."""

from __future__ import annotations

import re

from tentalis.events import ResultEvent, TaskEvent
from tentalis.rewards.base import StepScores, ground_truth
from tentalis.steps.answers import final_answer_of
from tentalis.steps.parsing import clean_answer


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
