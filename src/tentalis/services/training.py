"""``tentalis train``: the trainer service as its own process (wiring only).

It consumes scored rollouts from JetStream as they arrive, trains, checkpoints, and
publishes adapter versions the workers hot-swap. With ``feed_level`` it also drives
sampling rounds from the math suite through the running manager/workers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from tentalis.agents.manager import Manager
from tentalis.agents.review import RuleReviewer
from tentalis.config import Settings
from tentalis.config.training import TrainConfig
from tentalis.errors import PrerequisiteError
from tentalis.inference.adapters import AdapterStore
from tentalis.models import ModelStore
from tentalis.rewards.guard import GuardConfig
from tentalis.services.runtime import connected_bus, heartbeat, stop_on_signals
from tentalis.store import ExperienceStore
from tentalis.store.training import TrainingLedger
from tentalis.training.checkpoint import CheckpointManager
from tentalis.training.feeder import feed_rounds
from tentalis.training.metrics import MetricsLogger, StepMetrics
from tentalis.training.service import TrainerService, TrainerServiceConfig
from tentalis.training.trainer import PolicyTrainer


def check_backend(backend: str) -> None:
    if backend == "openrlhf":
        raise PrerequisiteError(
            "the OpenRLHF backend (Ray + vLLM + DeepSpeed) is not available in this build; "
            "use `--backend standalone` (CPU or CUDA, whichever is present)"
        )


def guard_config(settings: Settings) -> GuardConfig:
    """The reward-hacking guard's thresholds: the guard section (GUARD_*)."""
    return settings.guard


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
    check_backend(backend)
    guard = guard_config(settings)
    model_dir = ModelStore(settings.tentalis_home).resolve(settings.inference.model)
    trainer = await asyncio.to_thread(PolicyTrainer, model_dir, config)
    home = settings.tentalis_home
    logger = MetricsLogger(home / "runs" / f"{trainer_id}-{config.adapter_name}")
    stop = asyncio.Event()
    stop_on_signals(stop)

    def stepped(m: StepMetrics) -> None:
        logger.log(m.step, m)
        if on_step is not None:
            on_step(m)
        if max_steps is not None and m.step >= max_steps:
            stop.set()

    store = ExperienceStore(settings.store_path)
    async with connected_bus(settings) as bus:
        service = TrainerService(
            bus, trainer, TrainingLedger(store, trainer_id),
            CheckpointManager(home / "checkpoints" / f"{trainer_id}-{config.adapter_name}",
                              keep_last=config.keep_checkpoints),
            AdapterStore(home / "adapters"),
            TrainerServiceConfig(trainer_id=trainer_id, target_worker=target_worker),
            on_step=stepped,
            guard=guard,
        )
        runner = asyncio.create_task(service.run(stop))
        beat = asyncio.ensure_future(heartbeat(
            bus, trainer_id, "trainer",
            lambda: {"processed": trainer.step, "adapter": config.adapter_name,
                     "adapter_version": service.published[-1].version
                     if service.published else None, **service.gate.health()}, stop))
        try:
            if feed_level:
                manager = Manager(bus, RuleReviewer(), settings.manager.model_copy(
                    update={"manager_id": f"{trainer_id}-feeder"}))
                await feed_rounds(manager, service, runner, until=stop.is_set,
                                  seed=settings.tentalis_seed, level=feed_level,
                                  max_new_tokens=max_new_tokens)
                await manager.stop_tracking()
            else:
                await stop.wait()
        finally:
            stop.set()
            if trainer.step and service.published_step != trainer.step:
                await service.publish(service.history[-1] if service.history else None)
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await runner
            with contextlib.suppress(Exception):
                await beat
            logger.close()
            store.close()
    return service
