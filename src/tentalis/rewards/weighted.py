"""``WeightedScorer``: a fixed weighted combination of scorers.

With weights ``w_i`` normalised to sum to 1 (``ŵ_i = w_i / Σ w``)::

    outcome  = Σ_i ŵ_i · outcome_i
    step[j]  = Σ_{i ∈ P} w_i · step_i[j] / Σ_{i ∈ P} w_i

where ``P`` is the set of scorers that gave one score per step (a scorer that returns an
empty or mismatched list abstains on steps). When no scorer gives step scores the result
has none. ``details["components"]`` maps each scorer's name to its outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from tentalis.events import ResultEvent, TaskEvent
from tentalis.rewards.base import StepScorer, StepScores


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


class WeightedScorer:
    """Combines scorers by weight; see the module docstring for the formula."""

    def __init__(
        self,
        scorers: Mapping[StepScorer, float] | Sequence[tuple[StepScorer, float]],
        name: str = "weighted",
    ) -> None:
        pairs = list(scorers.items() if isinstance(scorers, Mapping) else scorers)
        if not pairs:
            raise ValueError("WeightedScorer needs at least one scorer")
        names = [s.name for s, _ in pairs]
        if len(set(names)) != len(names):
            raise ValueError(f"scorer names must be unique, got {names}")
        if any(w < 0 for _, w in pairs) or sum(w for _, w in pairs) <= 0:
            raise ValueError(f"weights must be >= 0 with a positive sum, got {pairs}")
        total = sum(w for _, w in pairs)
        self.scorers = [s for s, _ in pairs]
        self.weights = {s.name: w / total for s, w in pairs}
        self.name = name

    async def score(self, task: TaskEvent, result: ResultEvent) -> StepScores:
        parts = await asyncio.gather(*(s.score(task, result) for s in self.scorers))
        by_name = dict(zip((s.name for s in self.scorers), parts, strict=True))
        outcome = sum(self.weights[n] * p.outcome_score for n, p in by_name.items())
        n_steps = len(result.steps)
        voters = {
            n: p for n, p in by_name.items()
            if n_steps and len(p.step_scores) == n_steps and self.weights[n] > 0
        }  # fmt: skip
        steps: list[float] = []
        if voters:
            norm = sum(self.weights[n] for n in voters)
            steps = [
                _clip(sum(self.weights[n] * p.step_scores[j] for n, p in voters.items()) / norm)
                for j in range(n_steps)
            ]
        return StepScores(
            step_scores=steps,
            outcome_score=_clip(outcome),
            details={
                "components": {n: p.outcome_score for n, p in by_name.items()},
                "weights": dict(self.weights),
                "step_voters": sorted(voters),
                "component_details": {n: p.details for n, p in by_name.items()},
            },
        )
