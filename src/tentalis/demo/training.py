"""The demo that gets better: evaluate, train live for a budget, evaluate again.

(a) held-out accuracy of the current policy (greedy, through the whole loop);
(b) for ``minutes``: the manager fans each training prompt out ``group_size`` times
    (sampled, scored by the lenient math reward), the trainer service turns the scored
    groups into GRPO steps and publishes an adapter version after every
    ``save_every`` steps, and the workers hot-swap it while they keep serving;
(c) held-out accuracy again, now answered with the latest adapter.

The lenient reward (``tentalis.envs.math.lenient``) gives credit for the right number
anywhere in a finished answer, more for a correct final answer and most for one on an
``Answer: N`` line, so a base model that rarely follows the format still gets a learning
signal from the first step. Held-out accuracy is measured with the strict verifier, on
problems training never sees.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tentalis.config import Settings
from tentalis.config.training import TrainConfig
from tentalis.demo.loop import LoopReport, heldout_tasks
from tentalis.events import TaskEvent, new_id
from tentalis.inference.local import LocalInference
from tentalis.services.stack import LocalStack
from tentalis.services.trainer_run import TrainerRun, TrainerRunOptions
from tentalis.training.feeder import feed_rounds
from tentalis.training.metrics import StepMetrics, learning_curve_png

Say = Callable[[str], None]


@dataclass
class TrainingDemoReport:
    before: LoopReport
    after: LoopReport
    steps: list[StepMetrics]
    adapter_versions: list[int]
    rounds: int
    dropped_groups: int
    train_seconds: float
    curve: Path | None = None
    eval_points: list[tuple[int, float]] = field(default_factory=list)


async def evaluate(stack: LocalStack, tasks: list[TaskEvent]) -> LoopReport:
    """Greedy held-out pass through the running stack (fresh task ids every time)."""
    fresh = [t.model_copy(update={"task_id": new_id(), "event_id": new_id()}) for t in tasks]
    t0 = time.perf_counter()
    outcomes = await stack.manager.submit(fresh)
    wall = time.perf_counter() - t0
    tokens = sum(len(o.score.result.completion_token_ids or []) for o in outcomes if o.score)
    return LoopReport(outcomes=outcomes, wall_s=wall, completion_tokens=tokens,
                      task_latencies_s=[o.latency_s for o in outcomes])


async def _workers_on(stack: LocalStack, version: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all((w.adapter_version or 0) >= version for w in stack.workers):
            return
        await asyncio.sleep(0.05)


@dataclass
class _Session:
    before: LoopReport
    after: LoopReport
    eval_points: list[tuple[int, float]]
    rounds: int
    train_seconds: float


async def run_training_demo(
    bus, settings: Settings, inference: LocalInference, model_dir: Path, config: TrainConfig,
    *, minutes: float, eval_tasks: int, workers: int, level: str, train_max_new_tokens: int,
    run_dir: Path, say: Say, on_step: Callable[[StepMetrics], None] | None = None,
    mid_evals: int = 1,
) -> TrainingDemoReport:
    """``mid_evals`` extra held-out evaluations split the training budget evenly (the
    training clock is paused while they run), giving the learning curve its middle points.
    Step metrics are logged under ``run_dir/tensorboard``."""
    run = await TrainerRun.build(bus, settings, config, TrainerRunOptions(
        trainer_id=f"demo-{run_dir.name}", run_tag=run_dir.name,
        checkpoint_dir=run_dir / "checkpoints", metrics_dir=run_dir / "tensorboard",
        compute_lock=inference.model_lock,  # one of sampling or training at a time
        on_step=on_step, guarded=False, heartbeat=False,
    ), model_dir=model_dir)
    service, trainer = run.service, run.trainer
    held = heldout_tasks(settings, eval_tasks, level=level, max_new_tokens=train_max_new_tokens)

    async def session(stack: LocalStack, run: TrainerRun) -> _Session:
        say("evaluating the base model on the held-out split")
        before = await evaluate(stack, held)
        eval_points = [(0, before.accuracy)]
        say(f"training for {minutes:g} min (adapter hot-swapped into the workers)")

        async def swapped() -> None:
            if service.published:
                await _workers_on(stack, service.published[-1].version)

        assert run.runner is not None
        rounds, train_seconds = 0, 0.0
        for segment in range(mid_evals + 1):
            budget = minutes * 60 / (mid_evals + 1)
            t0 = time.monotonic()
            rounds += await feed_rounds(
                stack.manager, service, run.runner,
                until=lambda t0=t0, budget=budget: time.monotonic() - t0 >= budget,
                seed=settings.tentalis_seed, level=level, first_round=rounds,
                max_new_tokens=train_max_new_tokens, after_step=swapped,
                run_tag=run_dir.name,
            )
            train_seconds += time.monotonic() - t0
            if segment < mid_evals and trainer.step:
                await run.publish_latest()
                await swapped()
                say(f"held-out check at step {trainer.step} (training clock paused)")
                mid = await evaluate(stack, held)
                eval_points.append((trainer.step, mid.accuracy))
                say(f"step {trainer.step}: held-out accuracy {mid.accuracy:.1%}")
        await run.publish_latest()
        await swapped()
        say("evaluating the trained adapter on the held-out split")
        after = await evaluate(stack, held)
        return _Session(before, after, eval_points, rounds, train_seconds)

    async with LocalStack(bus, inference, settings, workers=workers) as stack:
        # the trainer acks and skips what is not this run's (held-out results, rollouts an
        # interrupted earlier run left unacked) while the base model is evaluated
        done = await run.run(lambda run: session(stack, run))
        await stack.drain()
    assert done is not None
    report = TrainingDemoReport(
        before=done.before, after=done.after, steps=list(service.history),
        adapter_versions=[v.version for v in service.published], rounds=done.rounds,
        dropped_groups=service.dropped_groups, train_seconds=done.train_seconds,
        eval_points=[*done.eval_points, (trainer.step, done.after.accuracy)],
    )
    if report.steps:
        report.curve = learning_curve_png(
            run_dir / "learning_curve.png",
            [m.step for m in report.steps], [m.reward_mean for m in report.steps],
            report.eval_points, title=f"tentalis demo — {settings.inference.model}",
        )
    return report
