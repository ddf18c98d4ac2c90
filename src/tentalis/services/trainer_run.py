"""One training run: the trainer, its service and their files, wired once from settings.

``tentalis train`` and the training demo both run the trainer through :class:`TrainerRun`:
it builds the PolicyTrainer, the TrainerService, the training ledger, the checkpoint
directory, the adapter store and the metrics log, runs the service beside the caller's
``body`` (a feeder, the demo's evaluations, or just waiting for ``stop``), and on exit
publishes the latest weights unless they are already published.

A crash is never silent: when the service task dies, the body is cancelled at once, the
heartbeat's last entry is ``failed`` with ``"<ExceptionType>: <message>"``, and the run
raises :class:`~tentalis.errors.TrainingError` (``tentalis train`` exits non-zero with the
reason). A crashed run publishes nothing: the next run resumes from the last recorded
checkpoint, and the rollouts trained since were never acked, so they are redelivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tentalis.bus.base import Bus
from tentalis.config import Settings
from tentalis.config.training import TrainConfig
from tentalis.errors import TrainingError
from tentalis.inference.adapters import AdapterStore
from tentalis.models import ModelStore
from tentalis.services.heartbeat import Ending, failure_reason, reporting_health
from tentalis.store import ExperienceStore
from tentalis.store.training import TrainingLedger
from tentalis.training.checkpoint import CheckpointManager
from tentalis.training.metrics import MetricsLogger, StepMetrics
from tentalis.training.service import TrainerService, TrainerServiceConfig
from tentalis.training.trainer import PolicyTrainer

log = logging.getLogger(__name__)

T = TypeVar("T")
Body = Callable[["TrainerRun"], Awaitable[T]]


@dataclass
class TrainerRunOptions:
    """What differs between runs; everything else comes from settings and TrainConfig."""

    trainer_id: str = "trainer-01"
    #: train only on rollouts tagged with this run (``TrainerServiceConfig.run_tag``)
    run_tag: str | None = None
    #: send model updates to this worker only
    target_worker: str | None = None
    #: default ``<home>/checkpoints/<trainer_id>-<adapter>``
    checkpoint_dir: Path | None = None
    #: TensorBoard + metrics.jsonl; default ``<home>/runs/<trainer_id>-<adapter>``
    metrics_dir: Path | None = None
    #: held for every optimiser step (an in-process inference engine's ``model_lock``)
    compute_lock: AbstractContextManager[object] | None = None
    on_step: Callable[[StepMetrics], None] | None = None
    #: set ``stop`` once the trainer has taken this many steps
    max_steps: int | None = None
    #: the reward-hacking guard from the GUARD_* settings (off: promotion never pauses)
    guarded: bool = True
    #: report health on the bus as a service of kind ``trainer``
    heartbeat: bool = True


class TrainerRun:
    """A trainer service with its ledger, checkpoints, adapters and metrics; see the module."""

    def __init__(self, bus: Bus, service: TrainerService, store: ExperienceStore,
                 logger: MetricsLogger, options: TrainerRunOptions) -> None:
        self.bus = bus
        self.service = service
        self.trainer = service.trainer
        self.store = store
        self.logger = logger
        self.options = options
        self.stop = asyncio.Event()
        self.runner: asyncio.Task[None] | None = None
        service.on_step = self._stepped

    @classmethod
    async def build(
        cls,
        bus: Bus,
        settings: Settings,
        config: TrainConfig,
        options: TrainerRunOptions | None = None,
        *,
        model_dir: Path | None = None,
    ) -> TrainerRun:
        """Load the trainer (``model_dir``, default: LLM_MODEL resolved) and wire the run."""
        options = options or TrainerRunOptions()
        home = settings.tentalis_home
        name = f"{options.trainer_id}-{config.adapter_name}"
        guard = settings.guard if options.guarded else None
        if model_dir is None:
            model_dir = await asyncio.to_thread(ModelStore(home).resolve, settings.inference.model)
        trainer = await asyncio.to_thread(PolicyTrainer, model_dir, config)
        store = ExperienceStore(settings.store_path)
        service = TrainerService(
            bus, trainer, TrainingLedger(store, options.trainer_id),
            CheckpointManager(options.checkpoint_dir or home / "checkpoints" / name,
                              keep_last=config.keep_checkpoints),
            AdapterStore(home / "adapters"),
            TrainerServiceConfig(trainer_id=options.trainer_id,
                                 target_worker=options.target_worker, run_tag=options.run_tag),
            guard=guard,
            compute_lock=options.compute_lock,
        )
        logger = MetricsLogger(options.metrics_dir or home / "runs" / name)
        return cls(bus, service, store, logger, options)

    # --- running ------------------------------------------------------------------------
    async def run(self, body: Body[T] | None = None) -> T | None:
        """Run the service beside ``body(self)`` (default: wait for ``stop``) until either
        ends; then publish the latest weights and close. Returns what ``body`` returned.

        Raises TrainingError when the service crashed (``body`` is cancelled at once), and
        whatever ``body`` raised otherwise (the weights are still published)."""
        self.runner = asyncio.create_task(self.service.run(self.stop),
                                          name=f"{self.options.trainer_id}-service")
        work = asyncio.ensure_future(body(self) if body is not None else self.stop.wait())
        try:
            async with self._health() as ending:
                try:
                    await asyncio.wait({self.runner, work},
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    early = self.crash()  # the service ended before the run asked it to stop
                    self.stop.set()
                    if not work.done():
                        work.cancel()  # the service is gone (or the run is): stop the feeder
                    await asyncio.wait({work})
                    await self._end_service()
                crash = early or self.crash()  # or its last batch failed
                if crash is not None:
                    reason = failure_reason(crash)
                    log.error("trainer %s failed", self.options.trainer_id, exc_info=crash)
                    ending.fail(reason)
                    raise TrainingError(
                        f"trainer {self.options.trainer_id} failed: {reason}") from crash
                await self.publish_latest()
                return None if work.cancelled() else work.result()
        finally:
            self.close()

    def crash(self) -> BaseException | None:
        """Why the service task ended on its own, or None (still running, or stopped)."""
        runner = self.runner
        if runner is None or not runner.done() or runner.cancelled():
            return None
        exc = runner.exception()
        if exc is None and not self.stop.is_set():
            return TrainingError("the trainer service stopped consuming before the run ended")
        return exc

    async def publish_latest(self) -> None:
        """Publish the current weights unless the last published adapter already has them."""
        service = self.service
        if self.trainer.step and service.published_step != self.trainer.step:
            await service.publish(service.history[-1] if service.history else None)

    def close(self) -> None:
        self.logger.close()
        self.store.close()

    # --- internals ----------------------------------------------------------------------
    def _stepped(self, metrics: StepMetrics) -> None:
        self.logger.log(metrics.step, metrics)
        if self.options.on_step is not None:
            self.options.on_step(metrics)
        if self.options.max_steps is not None and metrics.step >= self.options.max_steps:
            self.stop.set()

    async def _end_service(self) -> None:
        """Stop the service task: no step starts once ``stop`` is set; the batch in hand (a
        step in its thread, the save after it) finishes before the task is cancelled, so
        nothing trains or saves beside the final publish."""
        runner = self.runner
        assert runner is not None
        while self.service.busy and not runner.done():
            await asyncio.sleep(0.05)
        runner.cancel()
        await asyncio.wait({runner})

    def _health(self) -> contextlib.AbstractAsyncContextManager[Ending]:
        if not self.options.heartbeat:
            return _no_health()
        return reporting_health(self.bus, self.options.trainer_id, "trainer", self._stats)

    def _stats(self) -> dict[str, Any]:
        service = self.service
        return {"processed": self.trainer.step, "adapter": self.trainer.config.adapter_name,
                "adapter_version": service.published[-1].version if service.published else None,
                **service.gate.health()}


@contextlib.asynccontextmanager
async def _no_health() -> AsyncIterator[Ending]:
    yield Ending()

