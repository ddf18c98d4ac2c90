"""The consume loop every service runs: handle, then ack; on failure retry, then dead-letter.

A handler that raises never stops the loop. The delivery is nak'ed with a growing delay
(``backoff[attempt - 1]``, the last value repeating) until its last allowed attempt
(``spec.max_deliver``); that one is dead-lettered with ``"<ExceptionType>: <message>"``,
because JetStream itself just stops redelivering and would lose the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType

from tentalis.bus.base import Bus, ConsumerSpec, Delivery

log = logging.getLogger(__name__)

DEFAULT_BACKOFF: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0)

Handler = Callable[[Delivery], Awaitable[None]]
BatchHandler = Callable[[list[Delivery]], Awaitable[None]]


def retry_delay(num_delivered: int, backoff: Sequence[float]) -> float:
    """The nak delay after failed attempt ``num_delivered`` (1-based)."""
    if not backoff:
        return 0.0
    return backoff[min(max(num_delivered, 1), len(backoff)) - 1]


async def settle_failure(
    delivery: Delivery, spec: ConsumerSpec, exc: BaseException, backoff: Sequence[float]
) -> None:
    """Nak ``delivery`` for a retry, or dead-letter it on its last allowed attempt."""
    reason = f"{type(exc).__name__}: {exc}"
    where = f"{spec.name} {delivery.subject} seq={delivery.stream_sequence}"
    if delivery.num_delivered >= spec.max_deliver:
        log.error(
            "%s failed on attempt %d/%d, dead-lettering: %s",
            where,
            delivery.num_delivered,
            spec.max_deliver,
            reason,
        )
        await delivery.dead_letter(reason)
    else:
        delay = retry_delay(delivery.num_delivered, backoff)
        log.warning(
            "%s failed on attempt %d/%d, retrying in %gs: %s",
            where,
            delivery.num_delivered,
            spec.max_deliver,
            delay,
            reason,
        )
        await delivery.nak(delay)


async def run_consumer(
    bus: Bus,
    spec: ConsumerSpec,
    handler: Handler,
    *,
    stop: asyncio.Event | None = None,
    backoff: Sequence[float] = DEFAULT_BACKOFF,
) -> None:
    """Call ``await handler(delivery)`` for each delivery; ack on success.

    Returns when ``stop`` is set (the delivery in hand is finished, the rest of its batch
    nak'ed for prompt redelivery) or when the bus closes.
    """
    async with _Batches(bus, spec, stop) as batches:
        async for batch in batches:
            for i, delivery in enumerate(batch):
                if stop is not None and stop.is_set():
                    await _release(batch[i:])
                    return
                try:
                    await handler(delivery)
                except Exception as exc:
                    await _safely(settle_failure(delivery, spec, exc, backoff), spec)
                else:
                    await _safely(delivery.ack(), spec)


async def run_batch_consumer(
    bus: Bus,
    spec: ConsumerSpec,
    handler: BatchHandler,
    *,
    stop: asyncio.Event | None = None,
    backoff: Sequence[float] = DEFAULT_BACKOFF,
) -> None:
    """Call ``await handler(batch)`` per batch; ack all on success, else settle each one."""
    async with _Batches(bus, spec, stop) as batches:
        async for batch in batches:
            try:
                await handler(batch)
            except Exception as exc:
                for delivery in batch:
                    await _safely(settle_failure(delivery, spec, exc, backoff), spec)
            else:
                for delivery in batch:
                    await _safely(delivery.ack(), spec)


async def _safely(settle: Awaitable[None], spec: ConsumerSpec) -> None:
    """A failed ack/nak is logged; the delivery then comes back after ack_wait."""
    try:
        await settle
    except Exception:
        log.exception("consumer %s could not settle a delivery", spec.name)


async def _release(deliveries: Sequence[Delivery]) -> None:
    for delivery in deliveries:
        with contextlib.suppress(Exception):
            await delivery.nak()


class _Batches:
    """``bus.consume(spec)`` that also ends when ``stop`` is set, and is always closed."""

    def __init__(self, bus: Bus, spec: ConsumerSpec, stop: asyncio.Event | None) -> None:
        self._it: AsyncIterator[list[Delivery]] = aiter(bus.consume(spec))
        self._stop = stop
        self._stop_wait: asyncio.Future[bool] | None = None

    async def __aenter__(self) -> _Batches:
        if self._stop is not None:
            self._stop_wait = asyncio.ensure_future(self._stop.wait())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._stop_wait is not None:
            self._stop_wait.cancel()
        aclose = getattr(self._it, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()

    def __aiter__(self) -> _Batches:
        return self

    async def __anext__(self) -> list[Delivery]:
        if self._stop_wait is None:
            return await anext(self._it)
        if self._stop_wait.done():
            raise StopAsyncIteration
        nxt = asyncio.ensure_future(anext(self._it))
        try:
            await asyncio.wait({nxt, self._stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            nxt.cancel()
            await asyncio.wait({nxt})  # let the generator unwind before aclose()
            raise
        if not nxt.done():  # stopped while waiting for messages
            nxt.cancel()
            with contextlib.suppress(BaseException):
                await nxt
            raise StopAsyncIteration
        return nxt.result()
