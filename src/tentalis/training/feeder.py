"""Feeding an online trainer: sampling rounds from a task suite, one step at a time.

Each round, the manager fans new training prompts out ``group_size`` times (sampled at
temperature 0.5, scored with the suite's training reward) and waits for their feedback.
Then the feeder lets the trainer take the round in: when that completes a batch of useful
groups it waits for the optimiser step (and, through ``after_step``, for the workers to
hot-swap the new adapter) before sampling again, so rollouts stay on-policy. Groups with no
reward variance are dropped by the trainer (dynamic sampling).

How many prompts a round samples: enough to fill the step in one round at the share of
useful groups seen so far (:func:`round_size`) — with half the groups dropped, a 4-group
step samples 8 prompts at once rather than 4, then 4 again. A bigger batch costs less per
row (the weights are read once per token for all rows), so this buys more useful groups per
second (docs/measurements.md, "Decode batch size"). Useful groups beyond the step wait for
the next one (at most one optimiser step old).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

from tentalis.agents.manager import Manager
from tentalis.config.training import TrainConfig
from tentalis.envs import get_environment
from tentalis.events import TaskEvent, new_id
from tentalis.training.service import TrainerService


def round_size(config: TrainConfig, ready: int, useful: int, dropped: int,
               max_factor: int = 4) -> int:
    """Prompts to sample so that, at the useful share seen so far, the step fills in one
    round: ``ceil((P − ready) / share)`` with ``share = (useful + 1) / (useful + dropped + 1)``
    (one optimistic pseudo-count: no history means P prompts), between 1 and
    ``max_factor × P``."""
    need = config.prompts_per_step - ready
    if need <= 0:
        return config.prompts_per_step
    share = (useful + 1) / (useful + dropped + 1)
    return max(1, min(max_factor * config.prompts_per_step, math.ceil(need / share)))


def training_round(
    config: TrainConfig,
    round_index: int,
    *,
    prompts: int | None = None,
    seed: int,
    max_new_tokens: int,
    level: str,
    environment: str = "math",
    scorer: str = "lenient",
    temperature: float = 0.5,
    run_tag: str | None = None,
) -> list[TaskEvent]:
    """``prompts`` (default ``prompts_per_step``) new training prompts, each fanned out
    ``group_size`` times.

    Sampled at ``temperature`` 0.5 by default: a cooler temperature gives a small base
    model more right answers and more groups with reward variance than 0.8, and a group
    without variance is dropped, its sampling time spent for nothing (docs/measurements.md,
    "Sampling temperature"). ``run_tag`` goes into each task's ``metadata["run"]`` (see
    ``TrainerServiceConfig.run_tag``)."""
    env = get_environment(environment)
    specs = env.generate(prompts or config.prompts_per_step, split="train",
                         seed=seed * 100_003 + round_index, level=level)
    tasks = []
    for spec in specs:
        group = new_id()
        for j in range(config.group_size):
            tasks.append(TaskEvent(
                prompt=spec.prompt, answer=spec.answer, environment=spec.environment,
                split="train", group_id=group, sample_index=j, temperature=temperature,
                max_new_tokens=max_new_tokens, metadata={**spec.metadata, "scorer": scorer,
                                                **({"run": run_tag} if run_tag else {})},
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
    adaptive: bool = True,
    run_tag: str | None = None,
) -> int:
    """Run sampling rounds until ``until()``; returns how many rounds were sampled.

    Round ``k`` samples the prompts of ``training_round(..., k)``: pass ``first_round`` =
    the rounds already sampled to continue a run with new prompts. ``adaptive``: size each
    round with :func:`round_size` (else ``prompts_per_step`` prompts per round)."""
    config = service.trainer.config
    rounds = 0
    expected = service.seen
    while not until():
        target = service.trainer.step + 1
        size = round_size(config, len(service.ready), service.accepted_groups,
                          service.dropped_groups) if adaptive else None
        outcomes = await manager.submit(training_round(
            config, first_round + rounds, seed=seed, max_new_tokens=max_new_tokens, level=level,
            prompts=size, run_tag=run_tag))
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
