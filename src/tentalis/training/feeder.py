"""Feeding an online trainer: sampling rounds from a task suite, one step at a time.

Each round, the manager fans ``prompts_per_step`` new training prompts out
``group_size`` times (sampled at temperature 0.8, scored with the suite's training reward)
and waits for their feedback. Then the feeder lets the trainer take the round in: when
that completes a batch of useful groups it waits for the optimiser step (and, through
``after_step``, for the workers to hot-swap the new adapter) before sampling again, so
rollouts stay on-policy. Rounds whose groups had no reward variance are dropped by the
trainer (dynamic sampling) and simply followed by another round.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from tentalis.agents.environments import get_environment
from tentalis.agents.manager import Manager
from tentalis.events import TaskEvent, new_id
from tentalis.training.config import TrainConfig
from tentalis.training.service import TrainerService


def training_round(
    config: TrainConfig,
    round_index: int,
    *,
    seed: int,
    max_new_tokens: int,
    level: str,
    environment: str = "math",
    scorer: str = "lenient",
    temperature: float = 0.8,
) -> list[TaskEvent]:
    """``prompts_per_step`` new training prompts, each fanned out ``group_size`` times.

    Sampled at ``temperature`` 0.8: at 1.0 a 135M model's samples are mostly noise (few
    contain the right number, so most groups have no reward variance)."""
    env = get_environment(environment)
    specs = env.generate(config.prompts_per_step, split="train",
                         seed=seed * 100_003 + round_index, level=level)
    tasks = []
    for spec in specs:
        group = new_id()
        for j in range(config.group_size):
            tasks.append(TaskEvent(
                prompt=spec.prompt, answer=spec.answer, environment=spec.environment,
                split="train", group_id=group, sample_index=j, temperature=temperature,
                max_new_tokens=max_new_tokens, metadata={**spec.metadata, "scorer": scorer},
            ))
    return tasks


async def feed_rounds(
    manager: Manager,
    service: TrainerService,
    runner: asyncio.Task[None],
    *,
    until: Callable[[], bool],
    seed: int,
    level: str,
    max_new_tokens: int,
    after_step: Callable[[], Awaitable[None]] | None = None,
    take_in_timeout: float = 30.0,
    first_round: int = 0,
) -> int:
    """Run sampling rounds until ``until()``; returns how many rounds were sampled.

    Round ``k`` samples the prompts of ``training_round(..., k)``: pass ``first_round`` =
    the rounds already sampled to continue a run with new prompts."""
    config = service.trainer.config
    rounds = 0
    expected = service.seen
    while not until():
        target = service.trainer.step + 1
        outcomes = await manager.submit(training_round(
            config, first_round + rounds, seed=seed, max_new_tokens=max_new_tokens, level=level))
        rounds += 1
        expected += sum(1 for o in outcomes if o.score is not None and not o.score.error)
        deadline = time.monotonic() + take_in_timeout
        while service.seen < expected and time.monotonic() < deadline:
            _check(runner)
            await asyncio.sleep(0.02)
        if service.training or len(service.ready) >= config.prompts_per_step:
            await service.wait_for_step(target, timeout=900)
            if after_step is not None:
                await after_step()
        _check(runner)
    return rounds


def _check(runner: asyncio.Task[None]) -> None:
    if runner.done():
        runner.result()  # a trainer failure surfaces here, not as silence
