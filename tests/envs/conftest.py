"""Fixtures for the environment tests: the suite-through-its-verifier check and the
end-to-end run of a suite with the tiny model."""

from __future__ import annotations

import asyncio

import pytest

from tentalis.agents.worker import Worker, WorkerConfig
from tentalis.bus.base import Bus
from tentalis.envs import get_environment
from tentalis.events import ResultEvent, ScoreEvent, Subjects, TaskEvent
from tentalis.rewards.registry import scorer_for
from tentalis.rewards.service import ScorerService
from tentalis.steps.parsing import parse_steps


def result_for(task: TaskEvent, text: str) -> ResultEvent:
    """A ResultEvent as the worker would build it from ``text``."""
    parsed = parse_steps(text)
    return ResultEvent(task_id=task.task_id, task=task, environment=task.environment,
                       worker_id="w", raw_text=text, steps=parsed.steps,
                       final_answer=parsed.final_answer, parse_status=parsed.status)  # fmt: skip


async def _run_suite_end_to_end(  # type: ignore[no-untyped-def]
    bus: Bus, model_dir, environment: str, n: int, collect_events
) -> list[ScoreEvent]:
    """Publish ``n`` held-out tasks, answer them with a worker on the tiny model, score the
    results with the scorer service; the ScoreEvents."""
    from tentalis.inference.local import LocalInference

    tasks = [s.to_task_event() for s in get_environment(environment).generate(n, "heldout")]
    for t in tasks:
        await bus.publish(t)
    inference = LocalInference(model_dir, max_batch=n)
    worker = Worker(bus, inference, WorkerConfig(environments=(environment,), max_new_tokens=24,
                                                 seed=0))  # fmt: skip
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(60):
            while worker.processed < n:
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        running.cancel()
        await inference.close()
    service = ScorerService(bus, scorer_for)
    async with asyncio.timeout(60):
        async for batch in bus.consume(service.spec):
            await service.handle_batch(batch)
            for d in batch:
                await d.ack()
            if service.scored >= n:
                break
    return await collect_events(bus, [Subjects.SCORES_ALL], n)


@pytest.fixture
def run_suite_end_to_end(collect_events):  # type: ignore[no-untyped-def]
    """``await run_suite_end_to_end(bus, model_dir, environment, n)``: ScoreEvents."""

    async def run(bus: Bus, model_dir, environment: str, n: int) -> list[ScoreEvent]:  # type: ignore[no-untyped-def]
        return await _run_suite_end_to_end(bus, model_dir, environment, n, collect_events)

    return run


@pytest.fixture
def worker_result():  # type: ignore[no-untyped-def]
    """``worker_result(task, text)``: the ResultEvent a worker would publish for ``text``."""
    return result_for
