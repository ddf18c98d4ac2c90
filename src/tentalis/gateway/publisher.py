"""Publishing off the request path: an in-memory buffer, a flusher task, a disk spool.

``submit`` only appends to a list, so a request handler never waits for the bus. One
background task takes what was submitted and publishes it. When the bus is unreachable
(not connected yet, a publish fails or times out) the batch goes to the :class:`Spool`
on disk, and so does everything submitted after it until the spool has been replayed:
order is kept, and nothing is held only in memory longer than one flush. Every
``retry_interval`` seconds the flusher tries the bus again and replays the spool.

Nothing is doubled: events keep their ``event_id`` through the spool, JetStream drops a
repeated ``Nats-Msg-Id`` and the experience store ignores an id it already has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tentalis.bus.base import Bus
from tentalis.events import Event
from tentalis.gateway.spool import Spool

log = logging.getLogger(__name__)

BusFactory = Callable[[], Awaitable[Bus]]


@dataclass
class PublisherStats:
    submitted: int = 0
    published: int = 0
    spooled: int = 0
    replayed: int = 0
    bus_failures: int = 0


class EventPublisher:
    """Publishes submitted events in the background; spools them while the bus is down.

    ``bus`` is either a connected :class:`Bus` or a coroutine function that connects one
    (called again after a failure to connect, at most every ``retry_interval`` seconds).
    """

    def __init__(
        self,
        bus: Bus | BusFactory,
        spool: Spool,
        *,
        retry_interval: float = 1.0,
        publish_timeout: float = 5.0,
        max_batch: int = 256,
    ) -> None:
        self._bus: Bus | None = bus if isinstance(bus, Bus) else None
        self._factory: BusFactory | None = None if isinstance(bus, Bus) else bus
        self.spool = spool
        self.retry_interval = retry_interval
        self.publish_timeout = publish_timeout
        self.max_batch = max_batch
        self.stats = PublisherStats()
        self._pending: list[Event] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._next_retry = 0.0
        self._idle = asyncio.Event()
        self._idle.set()

    # --- the request side ---------------------------------------------------------------
    def submit(self, event: Event) -> None:
        """Queue ``event`` for publishing; returns at once."""
        self._pending.append(event)
        self.stats.submitted += 1
        self._idle.clear()
        self._wake.set()

    @property
    def buffered(self) -> int:
        """Events submitted and waiting in memory for the flusher."""
        return len(self._pending)

    @property
    def running(self) -> bool:
        """True once :meth:`start` has started the flusher (and until :meth:`close`)."""
        return self._task is not None

    @property
    def healthy(self) -> bool:
        """True while the bus takes events and nothing waits in the spool."""
        return self._bus is not None and self._next_retry == 0.0 and not self.spool

    # --- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._closing = False
            self._task = asyncio.create_task(self._run(), name="event-publisher")

    async def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted is published or spooled; False on timeout."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        return self._idle.is_set()

    async def close(self) -> None:
        """Publish or spool what is buffered, then stop (never drops an event)."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
            self._task = None
        if self._pending:  # the task died or never ran: keep the events on disk
            batch, self._pending = self._pending, []
            await asyncio.to_thread(self.spool.append, batch)
            self.stats.spooled += len(batch)
        self._idle.set()

    # --- the flusher --------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            if not self._pending:
                self._idle.set()
                wait = self.retry_interval if self.spool else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            try:
                await self._flush(batch)
            except Exception:  # never lose a batch to a bug in the path below
                log.exception("event publisher: flush failed; spooling %d events", len(batch))
                await asyncio.to_thread(self.spool.append, batch)
                self.stats.spooled += len(batch)
            if self._closing and not self._pending:
                return

    async def _flush(self, batch: list[Event]) -> None:
        if self.spool or not await self._ensure_bus():
            await self._spool(batch)
            if not self._closing:
                await self._replay()
            return
        sent = await self._publish_all(batch)
        if sent < len(batch):
            await self._spool(batch[sent:])

    async def _spool(self, events: list[Event]) -> None:
        if events:
            await asyncio.to_thread(self.spool.append, events)
            self.stats.spooled += len(events)

    async def _ensure_bus(self) -> bool:
        if self._bus is not None and self._next_retry == 0.0:
            return True
        if time.monotonic() < self._next_retry:
            return False
        if self._bus is None and self._factory is not None:
            try:
                self._bus = await asyncio.wait_for(self._factory(), self.publish_timeout)
            except Exception as exc:
                self._failed(f"cannot connect: {exc}")
                return False
        return self._bus is not None

    async def _publish_all(self, events: list[Event]) -> int:
        """Publish in order; stop at the first failure. Returns how many went out."""
        assert self._bus is not None
        for i, event in enumerate(events):
            try:
                await asyncio.wait_for(self._bus.publish(event), self.publish_timeout)
            except Exception as exc:
                self._failed(f"publish failed: {type(exc).__name__}: {exc}")
                return i
            self.stats.published += 1
        self._next_retry = 0.0
        return len(events)

    async def _replay(self) -> None:
        """Publish what the spool holds, oldest first, if the bus answers again."""
        if not self.spool or not await self._ensure_bus():
            return
        events = await asyncio.to_thread(self.spool.read)
        sent = await self._publish_all(events)
        if sent:
            await asyncio.to_thread(self.spool.forget, sent)
            self.stats.replayed += sent
            log.info("event publisher: replayed %d spooled events", sent)

    def _failed(self, why: str) -> None:
        self.stats.bus_failures += 1
        if self._next_retry == 0.0:
            log.warning("event publisher: bus unavailable (%s); spooling to %s",
                        why, self.spool.path)
        self._next_retry = time.monotonic() + self.retry_interval
