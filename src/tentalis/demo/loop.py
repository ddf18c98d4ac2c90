"""The demo: a batch of held-out tasks through the whole loop, on a real nats-server.

manager → TaskEvents → JetStream → workers (real model) → ResultEvents → scorer →
ScoreEvents → manager review → FeedbackEvents → recorder → SQLite. Every figure the
report prints is computed here from the events that came back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tentalis.agents.manager import TaskOutcome
from tentalis.bus.base import Bus
from tentalis.config import Settings
from tentalis.demo.stats import percentile, wilson_interval
from tentalis.envs import get_environment
from tentalis.events import TaskEvent
from tentalis.inference.base import InferenceClient
from tentalis.services.stack import LocalStack
from tentalis.steps.parsing import parse_steps


@dataclass
class LoopReport:
    """What one pass of tasks through the loop measured."""

    outcomes: list[TaskOutcome]
    wall_s: float
    completion_tokens: int
    task_latencies_s: list[float] = field(default_factory=list)
    store_counts: dict[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.outcomes)

    def _correct(self, o: TaskOutcome) -> bool:
        if o.score is None or o.score.error:
            return False
        return o.score.components.get("verifier", o.score.outcome_score) >= 1.0

    @property
    def correct(self) -> int:
        return sum(self._correct(o) for o in self.outcomes)

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def accuracy_ci(self) -> tuple[float, float]:
        return wilson_interval(self.correct, self.n)

    @property
    def answer_lines(self) -> int:
        """Results that state their final answer on an ``Answer:`` (or ``Final answer:``)
        line, right or wrong."""
        return sum(
            1
            for o in self.outcomes
            if o.score is not None
            and parse_steps(o.score.result.raw_text).answer_source in ("answer", "final_answer")
        )

    @property
    def in_format(self) -> int:
        """Results in the full format the workers are asked for: steps and a final answer."""
        return sum(
            1
            for o in self.outcomes
            if o.score is not None and o.score.result.final_answer is not None
            and o.score.result.parse_status == "ok"
        )

    @property
    def timed_out(self) -> int:
        return sum(o.timed_out for o in self.outcomes)

    @property
    def tasks_per_s(self) -> float:
        return self.n / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.wall_s if self.wall_s > 0 else 0.0

    def latency(self, q: float) -> float:
        return percentile(self.task_latencies_s, q)


def heldout_tasks(
    settings: Settings,
    n: int,
    *,
    environment: str = "math",
    level: str | None = None,
    max_new_tokens: int | None = None,
) -> list[TaskEvent]:
    """The first ``n`` held-out tasks of an environment (fixed by TENTALIS_SEED), greedy."""
    env = get_environment(environment)
    kwargs = {"level": level} if level else {}
    specs = env.generate(n, split="heldout", seed=settings.tentalis_seed, **kwargs)
    return [
        TaskEvent(
            prompt=s.prompt,
            answer=s.answer,
            environment=s.environment,
            metadata=dict(s.metadata),
            split=s.split,
            temperature=0.0,
            max_new_tokens=max_new_tokens,
        )
        for s in specs
    ]


async def run_tasks(
    bus: Bus,
    inference: InferenceClient,
    settings: Settings,
    tasks: list[TaskEvent],
    *,
    workers: int = 1,
    on_done: Callable[[TaskOutcome], None] | None = None,
) -> LoopReport:
    """Send ``tasks`` through a full in-process stack and measure what comes back."""
    async with LocalStack(bus, inference, settings, workers=workers) as stack:
        t0 = time.perf_counter()
        outcomes = await stack.manager.submit(tasks, on_done=on_done)
        wall = time.perf_counter() - t0
        await stack.drain()
        counts = stack.recorder.store.counts()
    tokens = sum(
        len(o.score.result.completion_token_ids or [])
        for o in outcomes
        if o.score is not None
    )
    return LoopReport(
        outcomes=outcomes,
        wall_s=wall,
        completion_tokens=tokens,
        task_latencies_s=[o.latency_s for o in outcomes],
        store_counts=counts,
    )
