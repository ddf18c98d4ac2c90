"""The ``StepScorer`` protocol: (task, result) → per-step scores in [0, 1] and an outcome."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tentalis.errors import ScoringError
from tentalis.events import ResultEvent, TaskEvent


@dataclass
class StepScores:
    """A scorer's verdict. ``step_scores[i]`` scores ``result.steps[i]``."""

    step_scores: list[float]
    outcome_score: float
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for s in [*self.step_scores, self.outcome_score]:
            if not 0.0 <= s <= 1.0:
                raise ValueError(f"score {s} is outside [0, 1]")


@runtime_checkable
class StepScorer(Protocol):
    """Scores a worker's result. Must not raise on bad worker output: low scores instead."""

    name: str

    async def score(self, task: TaskEvent, result: ResultEvent) -> StepScores: ...


def ground_truth(task: TaskEvent, scorer: str) -> str:
    """The task's ground-truth answer; a :class:`ScoringError` naming ``scorer`` when it has
    none (a task problem, not the worker's)."""
    if task.answer is None or not task.answer.strip():
        raise ScoringError(
            f"{scorer}: task {task.task_id} has no ground-truth answer; verifiers need "
            "TaskEvent.answer (use a judge scorer for open-ended tasks)"
        )
    return task.answer
