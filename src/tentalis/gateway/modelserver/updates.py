"""The model server follows ModelUpdateEvents the way a worker does.

For the adapter the server serves (WORKER_ADAPTER) and every adapter name already loaded,
the newest published version meant for every receiver or for this server
(``target_worker`` = MODEL_SERVER_ID) is checked, loaded beside the current version, and
``<adapter>`` repointed to it between requests: requests already running finish on the
old version, which is unloaded after the last of them (:class:`ServedAdapters`). The
verify → load → report steps are the worker's own (:mod:`tentalis.inference.adapters`); the
outcome is an AdapterLoadedEvent with ``worker_id`` = the server's id, so the adapter
registry (``tentalis adapters history``) shows the server beside the workers.

Adapters come from the server's adapter store only: an update names ``<name>`` v``<n>``
and the server loads ``<store>/<name>/v<n>`` once its sha256 matches the update's; the
update's ``path`` (the trainer's) is never opened.

The bus is optional: the follower connects in the background and retries every
``retry_seconds``; until the bus answers, the server serves the versions it has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from tentalis.bus.base import Bus, Delivery
from tentalis.events import AdapterLoadedEvent, ModelUpdateEvent
from tentalis.inference.adapters import (
    ServedAdapters,
    apply_update,
    newest_updates,
    updates_spec,
)

log = logging.getLogger(__name__)

Connect = Callable[[], Awaitable[Bus]]
"""Returns a connected bus, which the follower then owns (and closes)."""


class ModelUpdateFollower:
    """Applies ModelUpdateEvents to a model server's :class:`ServedAdapters`."""

    def __init__(self, served: ServedAdapters, connect: Connect, *,
                 server_id: str = "model-server", adapter: str = "policy",
                 retry_seconds: float = 5.0, max_deliver: int = 5) -> None:
        self.served = served
        self.server_id = server_id
        self.adapter = adapter
        self.retry_seconds = retry_seconds
        self.max_deliver = max_deliver
        self.bus: Bus | None = None  # while connected
        self.applied = 0
        self.rejected = 0
        self._connect = connect
        self._task: asyncio.Task[None] | None = None

    # --- what to apply ------------------------------------------------------------------
    def follows(self, adapter_name: str) -> bool:
        """The served adapter, and any name the server has loaded (by an admin, say)."""
        return adapter_name == self.adapter or self.served.serving(adapter_name) is not None

    async def handle_updates(self, deliveries: list[Delivery]) -> None:
        """Apply the newest update per followed name in the batch, then ack the batch."""
        for update in newest_updates(deliveries, self.server_id, self.follows):
            await self.apply_update(update)
        for d in deliveries:
            await d.ack()

    async def apply_update(self, update: ModelUpdateEvent) -> AdapterLoadedEvent:
        """Serve ``update``'s version as ``update.adapter_name`` (refused: keep the old one)."""
        assert self.bus is not None, "apply_update needs a connected bus (see run)"
        name, version = update.adapter_name, update.version
        current = self.served.serving(name)

        async def load(_: Path) -> None:
            await self.served.load(name, f"{name}@{version}", update.sha256)

        loaded = await apply_update(
            self.bus, update, self.server_id, load,
            previous=None if current is None else current[1],
            locate=lambda u: self.served.version_dir(u.adapter_name, u.version),
        )
        if loaded.error is None:
            self.applied += 1
        else:
            self.rejected += 1
        return loaded

    # --- running ------------------------------------------------------------------------
    def start(self) -> ModelUpdateFollower:
        """Follow updates in the background (on the server's event loop) until :meth:`stop`."""
        self._task = asyncio.create_task(self.run(), name="model-updates")
        return self

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        """Connect, follow updates, and reconnect after a failure, until cancelled."""
        warned = False
        while True:
            try:
                self.bus = await self._connect()
            except Exception as exc:
                if not warned:
                    log.warning("%s: no bus (%s); serving without following model updates, "
                                "retrying every %gs", self.server_id, exc, self.retry_seconds)
                    warned = True
            else:
                warned = False
                await self._follow(self.bus)
            await asyncio.sleep(self.retry_seconds)

    async def _follow(self, bus: Bus) -> None:
        log.info("%s follows model updates for %r", self.server_id, self.adapter)
        try:
            async for batch in bus.consume(updates_spec(self.server_id, self.max_deliver)):
                await self.handle_updates(batch)
        except Exception as exc:  # unacked updates come back after reconnecting
            log.warning("%s: following model updates failed (%s: %s); reconnecting",
                        self.server_id, type(exc).__name__, exc)
        finally:
            self.bus = None
            with contextlib.suppress(Exception):
                await bus.close()
