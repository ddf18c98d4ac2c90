"""The ``Bus`` protocol: durable publish/consume of events, plus request/reply.

Semantics every implementation keeps (the NATS one and the in-memory test double):

* ``publish`` deduplicates by ``event.event_id`` (NATS: the ``Nats-Msg-Id`` header within the
  stream's duplicate window) and returns ``False`` for a duplicate.
* ``consume(spec)`` reads a durable consumer. Consumers sharing ``spec.name`` share the
  work (queue-group / work-queue delivery); different names each see every message.
* A delivery is acked only when the handler's work is durable. An unacked delivery comes
  back after ``ack_wait``; a ``nak`` brings it back after ``delay``. After ``max_deliver``
  deliveries it goes to the dead-letter subject with the reason.
* A payload that is not a valid event never reaches the handler: it is dead-lettered with
  the decode error and terminated, and the consumer keeps running.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from tentalis.events import Event

DeliverPolicy = Literal["all", "new"]


@dataclass(frozen=True)
class ConsumerSpec:
    """How to read events: which subjects, as which durable consumer, in what batches."""

    name: str
    subjects: Sequence[str]
    batch: int = 1
    max_deliver: int = 5
    ack_wait: float = 120.0
    deliver: DeliverPolicy = "all"
    durable: bool = True
    fetch_timeout: float = 1.0


@runtime_checkable
class Delivery(Protocol):
    """One delivered, decoded event and the means to settle it."""

    event: Event
    subject: str
    num_delivered: int
    stream_sequence: int | None

    async def ack(self) -> None: ...

    async def nak(self, delay: float | None = None) -> None: ...

    async def in_progress(self) -> None: ...

    async def dead_letter(self, reason: str) -> None:
        """Publish a DeadLetterEvent with the payload and reason, then terminate."""
        ...


RequestHandler = Callable[[bytes], Awaitable[bytes]]
EventHandler = Callable[[Event], Awaitable[None]]


@dataclass
class ConsumerInfo:
    name: str
    pending: int
    ack_pending: int
    redelivered: int
    filter_subjects: list[str] = field(default_factory=list)


@dataclass
class BusInfo:
    url: str
    stream: str
    messages: int
    bytes: int
    consumers: list[ConsumerInfo]
    subjects: dict[str, int] = field(default_factory=dict)


@runtime_checkable
class Bus(Protocol):
    """Publish events durably; consume them as a (shared) durable consumer; request/reply."""

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, event: Event) -> bool:
        """Publish durably. Returns False when the stream already had this event_id."""
        ...

    async def publish_raw(
        self, subject: str, payload: bytes, msg_id: str | None = None
    ) -> bool:
        """Publish bytes as they are (tools and tests; consumers dead-letter what is invalid)."""
        ...

    def consume(self, spec: ConsumerSpec) -> AsyncIterator[list[Delivery]]:
        """Yield batches (1..spec.batch) of decoded deliveries until the bus closes."""
        ...

    async def listen(
        self, subjects: Sequence[str], handler: EventHandler
    ) -> Callable[[], Awaitable[None]]:
        """Live, at-most-once view of events as they are published (no durable state).

        Active when this returns. Payloads that do not decode are skipped (the durable
        consumers dead-letter them). Returns a coroutine function that stops listening.
        """
        ...

    async def request(self, subject: str, payload: bytes, timeout: float) -> bytes: ...

    async def serve(
        self, subject: str, handler: RequestHandler, queue: str | None = None
    ) -> Callable[[], Awaitable[None]]:
        """Answer requests on a core subject; returns a coroutine function that stops it."""
        ...

    async def put_health(self, key: str, value: dict[str, Any]) -> None: ...

    async def get_health(self) -> dict[str, dict[str, Any]]: ...

    async def info(self) -> BusInfo: ...
