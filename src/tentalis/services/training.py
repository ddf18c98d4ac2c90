"""``tentalis train``: the trainer service as its own process (wiring only).

It consumes scored rollouts from JetStream as they arrive, trains, checkpoints, and
publishes adapter versions the workers hot-swap (see :class:`TrainerRun`). With
``feed_level`` it also drives sampling rounds from the math suite through the running
manager/workers.
"""

from __future__ import annotations

from collections.abc import Callable

from tentalis.agents.manager import Manager
from tentalis.agents.review import RuleReviewer
from tentalis.config import Settings
from tentalis.config.training import TrainConfig
from tentalis.errors import PrerequisiteError
from tentalis.services.runtime import connected_bus, stop_on_signals
from tentalis.services.trainer_run import TrainerRun, TrainerRunOptions
from tentalis.training.feeder import feed_rounds
from tentalis.training.metrics import StepMetrics
from tentalis.training.service import TrainerService


def check_backend(backend: str) -> None:
    if backend == "openrlhf":
        raise PrerequisiteError(
            "the OpenRLHF backend (Ray + vLLM + DeepSpeed) is not available in this build; "
            "use `--backend standalone` (CPU or CUDA, whichever is present)"
        )


async def run_trainer(
    settings: Settings,
    config: TrainConfig,
    *,
    backend: str = "standalone",
    trainer_id: str = "trainer-01",
    target_worker: str | None = None,
    feed_level: str | None = None,
    max_steps: int | None = None,
    max_new_tokens: int = 48,
    on_step: Callable[[StepMetrics], None] | None = None,
) -> TrainerService:
    """Train until SIGINT/SIGTERM or ``max_steps``; a crash raises TrainingError."""
    check_backend(backend)
    async with connected_bus(settings) as bus:
        run = await TrainerRun.build(bus, settings, config, TrainerRunOptions(
            trainer_id=trainer_id, target_worker=target_worker, on_step=on_step,
            max_steps=max_steps))
        stop_on_signals(run.stop)

        async def feed(run: TrainerRun) -> None:
            assert feed_level is not None and run.runner is not None
            manager = Manager(bus, RuleReviewer(), settings.manager.model_copy(
                update={"manager_id": f"{trainer_id}-feeder"}))
            try:
                await feed_rounds(manager, run.service, run.runner, until=run.stop.is_set,
                                  seed=settings.tentalis_seed, level=feed_level,
                                  max_new_tokens=max_new_tokens)
            finally:
                await manager.stop_tracking()

        await run.run(feed if feed_level else None)
    return run.service
