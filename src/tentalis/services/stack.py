"""All services of the loop in one process, on one bus: the demo and end-to-end tests.

Every component talks to the others only through the bus (a real nats-server in the demo),
exactly as when each runs in its own process; sharing the process only shares the model,
so several workers batch their requests through one LocalInference.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from tentalis.agents.manager import Manager
from tentalis.agents.worker import Worker
from tentalis.bus.base import Bus
from tentalis.bus.consumer import run_batch_consumer
from tentalis.config import Settings
from tentalis.inference.base import InferenceClient
from tentalis.rewards.service import ScorerService
from tentalis.services.components import make_manager, make_recorder, make_scorer, make_worker
from tentalis.store.recorder import Recorder


class LocalStack:
    """Manager, N workers, scorer and recorder as tasks of the current event loop."""

    def __init__(
        self,
        bus: Bus,
        inference: InferenceClient,
        settings: Settings,
        *,
        workers: int = 1,
    ) -> None:
        self.bus = bus
        self.settings = settings
        self.workers: list[Worker] = [
            make_worker(bus, inference, settings, worker_id=f"{settings.worker.worker_id}-{i + 1}")
            for i in range(workers)
        ]
        self.scorer: ScorerService = make_scorer(bus, settings)
        self.manager: Manager = make_manager(bus, settings, inference)
        self.recorder: Recorder = make_recorder(settings)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def __aenter__(self) -> LocalStack:
        stop = self._stop
        self._spawn(run_batch_consumer(self.bus, self.recorder.spec,
                                       self.recorder.handle_batch, stop=stop), "recorder")
        self._spawn(run_batch_consumer(self.bus, self.scorer.spec, self.scorer.handle_batch,
                                       stop=stop),
                    "scorer")
        self._spawn(run_batch_consumer(self.bus, self.manager.review_spec(),
                                       self.manager.handle_scores, stop=stop),
                    "manager-review")
        for w in self.workers:
            self._spawn(w.run(stop), w.config.worker_id)
        await self.manager.start_tracking()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await self.manager.stop_tracking()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self.recorder.store.close()

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until the recorder has caught up with the stream (or ``timeout``)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            info = await self.bus.info()
            rec = next((c for c in info.consumers if c.name == "recorder"), None)
            if rec is not None and rec.pending == 0 and rec.ack_pending == 0:
                return
            await asyncio.sleep(0.1)
