"""Scorer service: scores every ResultEvent and publishes one ScoreEvent per result.

All scorer processes share the durable consumer ``scorers`` (work is split between
them). The ScoreEvent id is derived from the result id and the scorer name, so a result
scored twice (a redelivery after a crash) is recorded once.

A result the worker could not produce (``parse_status == "error"``) and a scorer that
raises are both recorded as a ScoreEvent with ``error`` set and outcome 0 — the trainer
skips such scores; they are data, not crashes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from tentalis.bus.base import Bus, ConsumerSpec, Delivery
from tentalis.errors import ScoringError
from tentalis.events import ResultEvent, ScoreEvent, Subjects, derived_id
from tentalis.rewards.base import StepScorer

log = logging.getLogger(__name__)

ScorerFactory = Callable[[str, str], StepScorer]


class ScorerService:
    """Turns ResultEvents into ScoreEvents with the scorer chosen for each environment."""

    def __init__(
        self,
        bus: Bus,
        scorer_for: ScorerFactory,
        *,
        service_id: str = "scorer-01",
        batch: int = 32,
        max_deliver: int = 5,
    ) -> None:
        self.bus = bus
        self.scorer_for = scorer_for
        self.service_id = service_id
        self.spec = ConsumerSpec(
            name="scorers", subjects=[Subjects.RESULTS_ALL], batch=batch, max_deliver=max_deliver
        )
        self._scorers: dict[tuple[str, str], StepScorer] = {}
        self.scored = 0

    def _scorer(self, result: ResultEvent) -> StepScorer:
        """The environment's scorer; ``format`` alone when the task has no ground truth.

        A task may name its scorer in ``metadata["scorer"]`` (e.g. ``lenient`` for training);
        a task naming a ``metadata["profile"]`` is scored by ``combined`` with that profile.
        The judge and combined scorers need no ground truth, so they are kept without one.
        """
        task = result.task
        default = "combined" if task.metadata.get("profile") else "default"
        spec = str(task.metadata.get("scorer", default))
        if task.answer is None and spec.partition(":")[0] not in ("judge", "combined"):
            spec = "format"
        key = (result.environment, spec)
        if key not in self._scorers:
            self._scorers[key] = self.scorer_for(result.environment, spec)
        return self._scorers[key]

    async def score(self, result: ResultEvent) -> ScoreEvent:
        """Score one result (never raises for bad worker output)."""
        try:
            scorer = self._scorer(result)
        except ScoringError as exc:
            return ScoreEvent(
                event_id=derived_id(result.event_id, "score", "unscorable"),
                task_id=result.task_id, result=result, environment=result.environment,
                scorer="none", source=self.service_id, step_scores=[], outcome_score=0.0,
                error=str(exc),
            )
        base = {
            "event_id": derived_id(result.event_id, "score", scorer.name),
            "task_id": result.task_id,
            "result": result,
            "environment": result.environment,
            "scorer": scorer.name,
            "source": self.service_id,
        }
        if result.parse_status == "error":
            return ScoreEvent(
                **base,
                step_scores=[],
                outcome_score=0.0,
                error=f"no result to score: {result.error}",
            )
        try:
            scores = await scorer.score(result.task, result)
        except Exception as exc:
            log.warning("scorer %s failed on %s: %s", scorer.name, result.task_id, exc)
            return ScoreEvent(
                **base, step_scores=[], outcome_score=0.0, error=f"{type(exc).__name__}: {exc}"
            )
        components = scores.details.get("components", {})
        return ScoreEvent(
            **base,
            step_scores=scores.step_scores,
            outcome_score=scores.outcome_score,
            components={k: float(v) for k, v in components.items()},
            details={k: v for k, v in scores.details.items() if k != "components"},
        )

    async def handle(self, delivery: Delivery) -> None:
        await self.handle_batch([delivery])

    async def handle_batch(self, deliveries: list[Delivery]) -> None:
        """Score a batch and publish its scores concurrently (acks follow, by the caller)."""
        scores: list[ScoreEvent] = []
        for d in deliveries:
            if isinstance(d.event, ResultEvent):
                scores.append(await self.score(d.event))
            else:
                await d.dead_letter(f"scorer expected a result event, got {d.event.kind!r}")
        await asyncio.gather(*(self.bus.publish(s) for s in scores))
        self.scored += len(scores)
