"""Worker: takes tasks from its environment's queue group, answers them step by step.

Workers of one environment share one durable JetStream consumer (``workers-<env>``), so
each task goes to exactly one of them and an unacked task (a worker that died mid-task)
is redelivered to another. A worker fetches up to ``batch_size`` tasks at once and answers
them in one batched generation.

Exactly-once recording: the ResultEvent's ``event_id`` is derived from the task's
``event_id``, so a task that is redelivered after a crash produces a result with the
same id, which the bus deduplicates and the store ignores.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from tentalis.bus.base import Bus, ConsumerSpec, Delivery
from tentalis.config.agents import WorkerConfig
from tentalis.envs.answering import build_messages
from tentalis.errors import TentalisError
from tentalis.events import (
    ModelUpdateEvent,
    SessionEvent,
    Subjects,
    TaskEvent,
    derived_id,
)
from tentalis.inference.adapters.updates import apply_update, newest_updates, updates_spec
from tentalis.inference.base import ChatRequest, Completion, InferenceClient
from tentalis.steps.results import failed_result, result_from_completion

log = logging.getLogger(__name__)


class Worker:
    """Answers TaskEvents with an InferenceClient and publishes Session and Result events."""

    def __init__(self, bus: Bus, inference: InferenceClient, config: WorkerConfig) -> None:
        self.bus = bus
        self.inference = inference
        self.config = config
        self.adapter = config.adapter
        self.processed = 0
        self.failed = 0
        self.adapter_version: int | None = None
        self.rejected_updates = 0

    def consumer_spec(self, environment: str) -> ConsumerSpec:
        return ConsumerSpec(
            name=f"workers-{environment}",
            subjects=[Subjects.task(environment)],
            batch=self.config.batch_size,
            max_deliver=self.config.max_deliver,
            ack_wait=self.config.ack_wait,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Consume every environment's queue until ``stop`` is set."""
        loops = [
            asyncio.create_task(self._consume(env, stop), name=f"worker-{env}")
            for env in self.config.environments
        ]
        loops.append(asyncio.create_task(self._follow_updates(stop), name="updates"))
        try:
            await stop.wait()
        finally:
            for t in loops:
                t.cancel()
            for t in loops:
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    async def _consume(self, environment: str, stop: asyncio.Event) -> None:
        async for batch in self.bus.consume(self.consumer_spec(environment)):
            if stop.is_set():
                break
            await self.handle_batch(batch)

    # --- adapter hot-swap ---------------------------------------------------------------
    def updates_spec(self) -> ConsumerSpec:
        """Each worker reads every model update (its own durable consumer)."""
        return updates_spec(self.config.worker_id, self.config.max_deliver)

    async def _follow_updates(self, stop: asyncio.Event) -> None:
        async for batch in self.bus.consume(self.updates_spec()):
            if stop.is_set():
                break
            await self.handle_updates(batch)

    async def handle_updates(self, deliveries: list[Delivery]) -> None:
        """Load the newest version of the adapter this worker follows (``follow_adapter``)
        when it is meant for all workers or this one; older ones in the batch are moot.

        The adapter is loaded beside the current one and requests switch to it between
        batches (the inference client swaps atomically), so no request fails or waits
        longer than the swap itself.
        """
        def follows(name: str) -> bool:
            return name == self.config.follow_adapter

        for update in newest_updates(deliveries, self.config.worker_id, follows):
            await self.apply_update(update)
        for d in deliveries:
            await d.ack()

    async def apply_update(self, update: ModelUpdateEvent) -> None:
        """Verify the adapter's checksum, load it, and answer with it from now on.

        An older version than the current one is a rollback and is applied the same way.
        The outcome (loaded or refused) is published as an AdapterLoadedEvent."""

        async def load(path: Path) -> None:
            await self.inference.load_adapter(update.adapter_name, str(path))

        loaded = await apply_update(self.bus, update, self.config.worker_id, load,
                                    previous=self.adapter_version)
        if loaded.error is None:
            self.adapter = update.adapter_name
            self.adapter_version = update.version
        else:
            self.rejected_updates += 1

    # --- tasks --------------------------------------------------------------------------
    async def handle_batch(self, deliveries: list[Delivery]) -> None:
        """Answer a batch of tasks; ack each only after its result is published."""
        good: list[tuple[Delivery, TaskEvent]] = []
        for d in deliveries:
            if isinstance(d.event, TaskEvent):
                good.append((d, d.event))
            else:
                await d.dead_letter(f"expected a task event, got {d.event.kind!r}")
        if not good:
            return
        try:
            async with self._keeping_alive([d for d, _ in good]):
                completions = await self._generate([t for _, t in good])
        except Exception as exc:  # the inference boundary: retry, then record as data
            await self._inference_failed(good, exc)
            return
        await asyncio.gather(
            *(self._publish(t, c) for (_, t), c in zip(good, completions, strict=True))
        )
        for delivery, _ in good:
            await delivery.ack()
        self.processed += len(good)

    async def _generate(self, tasks: list[TaskEvent]) -> list[Completion]:
        requests = [
            ChatRequest(
                messages=build_messages(t),
                max_tokens=t.max_new_tokens or self.config.max_new_tokens,
                temperature=(
                    t.temperature if t.temperature is not None else self.config.temperature
                ),
                adapter=t.adapter or self.adapter,
                seed=self._seed_for(t),
            )
            for t in tasks
        ]
        return await self.inference.chat(requests)

    def _seed_for(self, task: TaskEvent) -> int | None:
        """A per-task sampling seed: reproducible from the run's seed and the task, and
        different for every task — the G samples of one group must not be identical."""
        if self.config.seed is None:
            return None
        return int(derived_id(str(self.config.seed), task.event_id)[:8], 16)

    async def _publish(self, task: TaskEvent, completion: Completion) -> None:
        session = SessionEvent(
            event_id=derived_id(task.event_id, "session"),
            task_id=task.task_id,
            source=self.config.worker_id,
            session_id=task.task_id,
            messages=build_messages(task),
            completion=completion.text,
            prompt_token_ids=completion.prompt_token_ids or None,
            completion_token_ids=completion.completion_token_ids or None,
            logprobs=completion.logprobs,
            finish_reason=completion.finish_reason,
            latency_s=completion.latency_s,
            model=completion.model or self.inference.model_name,
            adapter=completion.adapter,
            worker_id=self.config.worker_id,
        )
        result = result_from_completion(task, completion, self.config.worker_id, session.event_id)
        await asyncio.gather(self.bus.publish(session), self.bus.publish(result))

    async def _inference_failed(
        self, good: list[tuple[Delivery, TaskEvent]], exc: Exception
    ) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, TentalisError):
            log.exception("inference failed")
        for delivery, task in good:
            if delivery.num_delivered >= self.config.max_deliver:
                await self.bus.publish(failed_result(task, self.config.worker_id, reason))
                await delivery.ack()
                self.failed += 1
            else:
                await delivery.nak(delay=min(2.0**delivery.num_delivered, 30.0))

    @contextlib.asynccontextmanager
    async def _keeping_alive(self, deliveries: list[Delivery]) -> AsyncIterator[None]:
        pinger = asyncio.ensure_future(self._keep_alive(deliveries))
        try:
            yield
        finally:
            pinger.cancel()

    async def _keep_alive(self, deliveries: list[Delivery]) -> None:
        """Tell the server we are still working, so long generations are not redelivered."""
        interval = max(self.config.ack_wait / 3, 1.0)
        while True:
            await asyncio.sleep(interval)
            for d in deliveries:
                with contextlib.suppress(Exception):
                    await d.in_progress()
