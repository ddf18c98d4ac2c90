"""Trainer service: scored rollouts from JetStream → GRPO steps → adapters for the workers.

It reads ScoreEvents as the durable consumer ``trainer-<adapter>``, keeps the ones from
training tasks (a ``group_id`` and ``split == "train"``), turns each into a Rollout and
collects them into complete groups. Every ``prompts_per_step`` groups it runs one
optimiser step (in a thread: the event loop keeps serving). Every ``save_every`` steps it

1. writes an atomic checkpoint (adapter + optimiser + RNG),
2. saves the adapter as the next version in the adapter store (sha256),
3. records checkpoint, adapter version and every rollout consumed since the previous
   checkpoint in the experience store — one transaction,
4. acks those rollouts' messages and publishes a ModelUpdateEvent — unless the
   reward-hacking guard paused promotion (:mod:`tentalis.training.promotion`): then the
   version is saved and recorded but held back until an operator resumes promotion.

Messages of rollouts not yet in a recorded checkpoint stay unacked (kept alive with
in-progress pings), so after a crash they are redelivered and, together with the ledger
of consumed ids, every rollout enters the persisted weights exactly once. Rollouts
dropped without training (no token ids, an errored score, a zero-variance group under
dynamic sampling) are recorded with that outcome at the next checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from tentalis.bus.base import Bus, ConsumerSpec, Delivery
from tentalis.events import Event, ModelUpdateEvent, ScoreEvent, Subjects
from tentalis.inference.adapters import AdapterStore, AdapterVersion
from tentalis.rewards.guard import GuardConfig
from tentalis.store.training import TrainingLedger
from tentalis.training.checkpoint import CheckpointManager
from tentalis.training.metrics import StepMetrics
from tentalis.training.promotion import PromotionGate
from tentalis.training.rollouts import RolloutBuffer, RolloutGroup, rollout_from_score
from tentalis.training.trainer import PolicyTrainer

log = logging.getLogger(__name__)


@dataclass
class TrainerServiceConfig:
    trainer_id: str = "trainer-01"
    target_worker: str | None = None
    batch: int = 64
    ack_wait: float = 600.0
    stale_group_s: float = 300.0
    #: Set: train only on rollouts whose task carries ``metadata["run"] == run_tag`` (the
    #: feeder tags its rounds); other training rollouts are acked and ignored. The demo
    #: uses it so that rollouts an interrupted earlier run left unacked on the shared
    #: durable consumer are not redelivered into this run's training.
    run_tag: str | None = None


@dataclass
class _Pending:
    """Rollouts trained on (or dropped) since the last recorded checkpoint."""

    deliveries: list[Delivery] = field(default_factory=list)
    outcomes: list[tuple[str, str]] = field(default_factory=list)


class TrainerService:
    """Feeds a PolicyTrainer from the bus and publishes what it learns."""

    def __init__(
        self,
        bus: Bus,
        trainer: PolicyTrainer,
        ledger: TrainingLedger,
        checkpoints: CheckpointManager,
        adapters: AdapterStore,
        config: TrainerServiceConfig | None = None,
        *,
        on_step: Callable[[StepMetrics], None] | None = None,
        guard: GuardConfig | None = None,
        compute_lock: AbstractContextManager[object] | None = None,
    ) -> None:
        """``compute_lock``: held for every optimiser step — pass the in-process inference
        engine's ``model_lock`` when trainer and workers share the CPU cores, so a step and a
        generation batch never run at once (on 2 cores two concurrent torch thread pools
        slow each other down far more than running one after the other)."""
        self.bus = bus
        self.compute_lock = compute_lock
        self.trainer = trainer
        self.ledger = ledger
        self.checkpoints = checkpoints
        self.adapters = adapters
        self.config = config or TrainerServiceConfig()
        self.on_step = on_step
        tc = trainer.config
        self.buffer = RolloutBuffer(tc.group_size)
        self.ready: list[RolloutGroup] = []
        self._held: dict[str, Delivery] = {}
        self._pending = _Pending()
        self.history: list[StepMetrics] = []
        self.published: list[AdapterVersion] = []
        self.published_step = 0
        self.dropped_groups = 0
        self.accepted_groups = 0  # groups kept for training (dynamic sampling's other side)
        self.seen = 0  # training rollouts taken in (trained, held or dropped)
        self.training = False
        self._stop = asyncio.Event()  # run()'s; set: take no further step
        self.steps_done = asyncio.Condition()
        # guard=None: no guard (promotion never pauses); the `tentalis train` wiring passes
        # settings.guard
        self.gate = PromotionGate(bus, ledger.store, trainer_id=self.config.trainer_id,
                                  adapter_name=self.adapter_name, config=guard)
        self.held: list[tuple[AdapterVersion, int, StepMetrics | None]] = []

    @property
    def adapter_name(self) -> str:
        return self.trainer.config.adapter_name

    def spec(self) -> ConsumerSpec:
        return ConsumerSpec(
            name=f"trainer-{self.adapter_name}",
            subjects=[Subjects.SCORES_ALL],
            batch=self.config.batch,
            ack_wait=self.config.ack_wait,
        )

    # --- lifecycle ----------------------------------------------------------------------
    def resume(self) -> int:
        """Restore the last checkpoint recorded in the store; returns its step (0: none)."""
        self.checkpoints.cleanup()
        record = self.ledger.latest_checkpoint()
        if record is None or not Path(record.path).is_dir():
            return 0
        self.checkpoints.restore(self.trainer, record.path)
        log.info("trainer resumed from %s (step %d)", record.path, record.step)
        return record.step

    async def run(self, stop: asyncio.Event) -> None:
        """Consume and train until ``stop`` is set; no step starts after that (groups still
        waiting stay unacked, for the next run)."""
        self._stop = stop
        await asyncio.to_thread(self.resume)
        await asyncio.to_thread(self.gate.restore)
        unlisten = await self.bus.listen([Subjects.GUARD], self._on_guard_event)
        keepalive = asyncio.ensure_future(self._keep_alive(stop))
        try:
            async for batch in self.bus.consume(self.spec()):
                await self.handle_batch(batch)
                if stop.is_set():
                    break
        finally:
            keepalive.cancel()
            await unlisten()

    # --- consuming ----------------------------------------------------------------------
    def _this_run(self, ev: ScoreEvent) -> bool:
        tag = self.config.run_tag
        return tag is None or ev.result.task.metadata.get("run") == tag

    async def handle_batch(self, deliveries: list[Delivery]) -> None:
        candidates: list[tuple[Delivery, ScoreEvent]] = []
        for d in deliveries:
            ev = d.event
            if not isinstance(ev, ScoreEvent) or ev.result.task.group_id is None \
                    or ev.result.task.split != "train" or not self._this_run(ev):
                await d.ack()  # not training data for this trainer
                continue
            candidates.append((d, ev))
        consumed = self.ledger.consumed([ev.result.event_id for _, ev in candidates])
        for d, ev in candidates:
            rid = ev.result.event_id
            if rid in consumed or rid in self._held:
                await d.ack()  # already in a recorded checkpoint, or a duplicate delivery
                continue
            self.seen += 1
            rollout = rollout_from_score(ev, self.trainer.tokenizer)
            if rollout is None:
                self._drop(d, rid, "unusable")
                continue
            self._held[rid] = d
            await self.gate.observe(ev, len(rollout.completion_ids), self.trainer.step)
            self._accept(self.buffer.add(rollout))
        self._accept(self.buffer.stale(self.config.stale_group_s))
        await self._train_ready()

    def _accept(self, groups: list[RolloutGroup]) -> None:
        """DAPO dynamic sampling: a complete group whose rewards carry no signal (all equal)
        is dropped here, so a step always trains on ``prompts_per_step`` useful groups; the
        producer keeps sampling until there are enough."""
        cfg = self.trainer.config
        for g in groups:
            if cfg.dynamic_sampling and not self.trainer.has_signal(g):
                self.dropped_groups += 1
                for r in g.rollouts:
                    d = self._held.pop(r.rollout_id, None)
                    if d is not None:
                        self._drop(d, r.rollout_id, "zero_variance")
            else:
                self.accepted_groups += 1
                self.ready.append(g)

    def _drop(self, delivery: Delivery, rollout_id: str, outcome: str) -> None:
        self._pending.deliveries.append(delivery)
        self._pending.outcomes.append((rollout_id, outcome))

    async def _train_ready(self) -> None:
        need = self.trainer.config.prompts_per_step
        while len(self.ready) >= need and not self._stop.is_set():
            groups, self.ready = self.ready[:need], self.ready[need:]
            self.training = True
            try:
                metrics = await asyncio.to_thread(self._step, groups)
            finally:
                self.training = False
            outcome = "skipped" if metrics.skipped else "trained"
            for g in groups:
                for r in g.rollouts:
                    d = self._held.pop(r.rollout_id, None)
                    if d is not None:
                        self._drop(d, r.rollout_id, outcome)
            if metrics.skipped:
                log.info("step skipped: %s", metrics.skip_reason)
                continue
            self.history.append(metrics)
            if self.on_step is not None:
                self.on_step(metrics)
            if self.trainer.step % self.trainer.config.save_every == 0:
                await self.publish(metrics)
            async with self.steps_done:
                self.steps_done.notify_all()

    def _step(self, groups: list[RolloutGroup]) -> StepMetrics:
        with self.compute_lock or contextlib.nullcontext():
            return self.trainer.train_step(groups)

    # --- publishing ---------------------------------------------------------------------
    async def publish(self, metrics: StepMetrics | None = None) -> AdapterVersion:
        """Checkpoint, new adapter version, ledger transaction, acks, ModelUpdateEvent
        (held back instead while the guard has promotion paused)."""
        version = await asyncio.to_thread(self._save)
        pending, self._pending = self._pending, _Pending()
        for d in pending.deliveries:
            await d.ack()
        self.published_step = self.trainer.step
        if self.gate.paused and not await asyncio.to_thread(self.gate.refresh):
            self.held.append((version, self.trainer.step, metrics))
            log.warning("adapter %s v%d held back: the reward-hacking guard paused promotion",
                        version.name, version.version)
            return version
        self.held.clear()  # superseded by this version
        await self._announce(version, self.trainer.step, metrics)
        return version

    async def _announce(
        self, version: AdapterVersion, step: int, metrics: StepMetrics | None
    ) -> None:
        summary = {} if metrics is None else {
            "reward_mean": metrics.reward_mean, "loss": metrics.loss, "kl": metrics.kl or 0.0,
        }
        await self.bus.publish(
            ModelUpdateEvent(
                adapter_name=version.name,
                version=version.version,
                sha256=version.sha256,
                path=str(version.path),
                base_model=self.trainer.base_model_name,
                target_worker=self.config.target_worker,
                step=step,
                metrics={k: float(v) for k, v in summary.items()},
                source=self.config.trainer_id,
            )
        )
        self.published.append(version)

    async def _on_guard_event(self, event: Event) -> None:
        """A ``resumed`` for this trainer lifts the pause and promotes the newest held version."""
        if self.gate.apply(event) and self.held:
            version, step, metrics = self.held[-1]
            self.held.clear()
            await self._announce(version, step, metrics)

    def _save(self) -> AdapterVersion:
        ckpt = self.checkpoints.save(self.trainer)
        self.adapters.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".tmp-", dir=self.adapters.root) as tmp:
            self.trainer.save_adapter(tmp)
            version = self.adapters.save_version(self.adapter_name, tmp)
        last = self.history[-1] if self.history else None
        self.ledger.record_checkpoint(
            step=self.trainer.step,
            path=str(ckpt),
            adapter_name=version.name,
            adapter_version=version.version,
            adapter_sha256=version.sha256,
            consumed=self._pending.outcomes,
            metrics=None if last is None else {"reward_mean": last.reward_mean},
        )
        return version

    async def _keep_alive(self, stop: asyncio.Event) -> None:
        interval = max(self.config.ack_wait / 3, 1.0)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            for d in [*self._held.values(), *self._pending.deliveries]:
                with contextlib.suppress(Exception):
                    await d.in_progress()

    async def wait_for_step(self, step: int, timeout: float) -> bool:
        """Wait until the trainer has taken ``step`` steps (False on timeout)."""
        async with self.steps_done:
            try:
                await asyncio.wait_for(
                    self.steps_done.wait_for(lambda: self.trainer.step >= step), timeout
                )
            except TimeoutError:
                return False
        return True
