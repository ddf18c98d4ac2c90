"""An in-memory Bus with the NATS bus's semantics. For unit tests only.

It keeps one process's events in a list, so nothing survives the process and nothing is
shared between processes. What it keeps from JetStream: deduplication by event id within
the duplicate window; one durable consumer per name whose readers share its messages while
every other name sees them all; NATS-style ``*``/``>`` filters; redelivery after
``ack_wait`` and after ``nak(delay)``; no redelivery after ``max_deliver``, and a dead letter
for what was never settled on its last delivery; dead letters for undecodable payloads.
Request/reply and health are plain dictionaries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tentalis.bus.base import (
    BusInfo,
    ConsumerInfo,
    ConsumerSpec,
    Delivery,
    EventHandler,
    RequestHandler,
)
from tentalis.bus.wire import (
    check_consumer_name,
    dead_letter_event,
    error_reply,
    exhausted_reason,
    health_key,
    is_dead_letter_subject,
    subject_matches,
)
from tentalis.errors import BusError, EventDecodeError
from tentalis.events import Event, Subjects, decode_event, new_id

log = logging.getLogger(__name__)


@dataclass
class _Stored:
    seq: int
    subject: str
    payload: bytes


@dataclass
class _Unacked:
    """A delivered message not yet settled: it is delivered again at ``due``."""

    num_delivered: int
    due: float
    redelivered: bool = False


@dataclass
class _Consumer:
    name: str
    spec: ConsumerSpec
    next_seq: int
    unacked: dict[int, _Unacked] = field(default_factory=dict)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def matches(self, subject: str) -> bool:
        return any(subject_matches(f, subject) for f in self.spec.subjects)

    def expire(self, now: float) -> list[tuple[int, int]]:
        """Forget messages that are due again but were delivered max_deliver times (NATS);
        return their ``(stream sequence, deliveries)`` for the dead letter."""
        out = []
        for seq, u in list(self.unacked.items()):
            if u.due <= now and u.num_delivered >= self.spec.max_deliver:
                del self.unacked[seq]
                out.append((seq, u.num_delivered))
        return out

    def take(self, stream: list[_Stored], now: float, batch: int) -> list[tuple[_Stored, int]]:
        """Up to one batch: due redeliveries first, then new matching messages."""
        out: list[tuple[_Stored, int]] = []
        for seq in sorted(self.unacked):
            u = self.unacked[seq]
            if len(out) < batch and u.due <= now:
                u.num_delivered += 1
                u.due, u.redelivered = now + self.spec.ack_wait, True
                out.append((stream[seq - 1], u.num_delivered))
        while len(out) < batch and self.next_seq <= len(stream):
            stored = stream[self.next_seq - 1]
            self.next_seq += 1
            if self.matches(stored.subject):
                self.unacked[stored.seq] = _Unacked(1, now + self.spec.ack_wait)
                out.append((stored, 1))
        return out

    def pending(self, stream: list[_Stored]) -> int:
        return sum(1 for s in stream[self.next_seq - 1 :] if self.matches(s.subject))


class MemoryDelivery:
    """A delivery from the MemoryBus. Settling twice is a no-op, as with NATS."""

    def __init__(
        self, bus: MemoryBus, consumer: _Consumer, stored: _Stored, event: Event, num_delivered: int
    ) -> None:
        self.event = event
        self.subject = stored.subject
        self.num_delivered = num_delivered
        self.stream_sequence: int | None = stored.seq
        self._bus, self._consumer, self._stored = bus, consumer, stored
        self._settled = False

    def _settle(self) -> _Unacked | None:
        if self._settled:
            return None
        self._settled = True
        return self._consumer.unacked.get(self._stored.seq)

    async def ack(self) -> None:
        if self._settle() is not None:
            del self._consumer.unacked[self._stored.seq]

    async def nak(self, delay: float | None = None) -> None:
        u = self._settle()
        if u is not None:
            u.due = time.monotonic() + (delay or 0.0)
            self._consumer.wakeup.set()

    async def in_progress(self) -> None:
        u = self._consumer.unacked.get(self._stored.seq)
        if not self._settled and u is not None:
            u.due = time.monotonic() + self._consumer.spec.ack_wait

    async def dead_letter(self, reason: str) -> None:
        if not self._settled:
            await self._bus._dead_letter(
                self._consumer, self._stored, self.num_delivered, reason, self.event
            )
            await self.ack()  # term: never delivered again


@dataclass
class _Service:
    subject: str
    queue: str | None
    handler: RequestHandler


class MemoryBus:
    """In-memory Bus for unit tests (see the module docstring for what it keeps)."""

    def __init__(self, *, duplicate_window: float = 120.0) -> None:
        self.url = "memory://"
        self.stream = Subjects.STREAM
        self.duplicate_window = duplicate_window
        self._stream: list[_Stored] = []
        self._seen: dict[str, float] = {}
        self._consumers: dict[str, _Consumer] = {}
        self._services: list[_Service] = []
        self._health: dict[str, dict[str, Any]] = {}
        self._listeners: list[tuple[Sequence[str], EventHandler]] = []
        self._connected = False

    async def connect(self) -> None:
        self._connected = True

    async def close(self) -> None:
        self._connected = False
        for c in self._consumers.values():
            c.wakeup.set()

    def _require(self) -> None:
        if not self._connected:
            raise BusError("memory bus is not connected; call `await bus.connect()`")

    # --- publish --------------------------------------------------------------------------
    async def publish(self, event: Event) -> bool:
        return await self.publish_raw(event.subject(), event.to_bytes(), event.event_id)

    async def publish_raw(self, subject: str, payload: bytes, msg_id: str | None = None) -> bool:
        self._require()
        if not subject_matches(Subjects.ALL, subject):
            raise BusError(
                f"no stream stores subject {subject!r} (tentalis events live under {Subjects.ALL})"
            )
        now = time.monotonic()
        if msg_id is not None:
            seen = self._seen.get(msg_id)
            if seen is not None and now - seen < self.duplicate_window:
                return False
            self._seen[msg_id] = now
        self._stream.append(_Stored(len(self._stream) + 1, subject, bytes(payload)))
        for c in self._consumers.values():
            c.wakeup.set()
        await self._notify(subject, payload)
        return True

    async def _notify(self, subject: str, payload: bytes) -> None:
        listeners = [h for subs, h in self._listeners
                     if any(subject_matches(s, subject) for s in subs)]
        if not listeners:
            return
        try:
            event = decode_event(payload)
        except EventDecodeError:
            return
        for handler in listeners:
            try:
                await handler(event)
            except Exception:
                log.exception("listener on %s failed", subject)

    async def listen(
        self, subjects: Sequence[str], handler: EventHandler
    ) -> Callable[[], Awaitable[None]]:
        self._require()
        entry = (tuple(subjects), handler)
        self._listeners.append(entry)

        async def stop() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(entry)

        return stop

    # --- consume --------------------------------------------------------------------------
    async def consume(self, spec: ConsumerSpec) -> AsyncIterator[list[Delivery]]:
        self._require()
        name = check_consumer_name(spec.name)
        if not spec.subjects:
            raise BusError(f"consumer {spec.name!r} names no subjects")
        if not spec.durable:
            name = f"{name}-{new_id()[:12]}"
        consumer = self._consumers.get(name)
        if consumer is None:
            start = len(self._stream) + 1 if spec.deliver == "new" else 1
            consumer = self._consumers[name] = _Consumer(name, spec, start)
        try:
            while self._connected:
                batch: list[Delivery] = []
                for stored, n in await self._next(consumer, spec.batch):
                    try:
                        event = decode_event(stored.payload)
                    except EventDecodeError as exc:
                        await self._dead_letter(consumer, stored, n, str(exc), None)
                        consumer.unacked.pop(stored.seq, None)
                        continue
                    batch.append(MemoryDelivery(self, consumer, stored, event, n))
                if batch:
                    yield batch
        finally:
            if not spec.durable:
                self._consumers.pop(name, None)

    async def _next(self, consumer: _Consumer, batch: int) -> list[tuple[_Stored, int]]:
        while self._connected:
            now = time.monotonic()
            await self._expire(consumer, now)
            items = consumer.take(self._stream, now, batch)
            if items:
                return items
            dues = [u.due for u in consumer.unacked.values()]
            wait = max(min(dues) - now, 0.001) if dues else None
            consumer.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(consumer.wakeup.wait(), wait)
        return []

    async def _expire(self, consumer: _Consumer, now: float) -> None:
        """Dead-letter what was never settled on its last allowed delivery (on NATS: the
        max-deliveries advisory, read by :mod:`tentalis.bus.exhausted`)."""
        for seq, num_delivered in consumer.expire(now):
            stored = self._stream[seq - 1]
            try:
                event: Event | None = decode_event(stored.payload)
            except EventDecodeError:
                event = None
            await self._dead_letter(
                consumer, stored, num_delivered, exhausted_reason(num_delivered), event
            )

    async def _dead_letter(
        self,
        consumer: _Consumer,
        stored: _Stored,
        num_delivered: int,
        reason: str,
        event: Event | None,
    ) -> None:
        if is_dead_letter_subject(stored.subject):
            return
        await self.publish(
            dead_letter_event(
                subject=stored.subject,
                consumer=consumer.spec.name,
                reason=reason,
                payload=stored.payload,
                num_delivered=num_delivered,
                stream_sequence=stored.seq,
                event=event,
            )
        )

    # --- request / reply ------------------------------------------------------------------
    async def request(self, subject: str, payload: bytes, timeout: float) -> bytes:
        self._require()
        services = [s for s in self._services if subject_matches(s.subject, subject)]
        if not services:
            raise BusError(f"nothing serves {subject!r} at {self.url}")
        service = random.choice(services)
        try:
            return await asyncio.wait_for(_answer(service.handler, payload), timeout)
        except TimeoutError:
            raise BusError(f"no reply on {subject!r} within {timeout:g}s") from None

    async def serve(
        self, subject: str, handler: RequestHandler, queue: str | None = None
    ) -> Callable[[], Awaitable[None]]:
        self._require()
        service = _Service(subject, queue, handler)
        self._services.append(service)

        async def stop() -> None:
            with contextlib.suppress(ValueError):
                self._services.remove(service)

        return stop

    # --- health & info --------------------------------------------------------------------
    async def put_health(self, key: str, value: dict[str, Any]) -> None:
        self._require()
        self._health[health_key(key)] = json.loads(json.dumps(value, default=str))

    async def get_health(self) -> dict[str, dict[str, Any]]:
        self._require()
        return json.loads(json.dumps(self._health))

    async def info(self) -> BusInfo:
        self._require()
        now = time.monotonic()
        subjects: dict[str, int] = {}
        for s in self._stream:
            subjects[s.subject] = subjects.get(s.subject, 0) + 1
        consumers = []
        for c in list(self._consumers.values()):
            await self._expire(c, now)
            consumers.append(
                ConsumerInfo(
                    name=c.name,
                    pending=c.pending(self._stream),
                    ack_pending=len(c.unacked),
                    redelivered=sum(1 for u in c.unacked.values() if u.redelivered),
                    filter_subjects=list(c.spec.subjects),
                )
            )
        return BusInfo(
            url=self.url,
            stream=self.stream,
            messages=len(self._stream),
            bytes=sum(len(s.payload) for s in self._stream),
            consumers=consumers,
            subjects=subjects,
        )


async def _answer(handler: RequestHandler, payload: bytes) -> bytes:
    try:
        return await handler(payload)
    except Exception as exc:
        return error_reply(exc)
