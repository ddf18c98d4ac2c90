"""Reading the event stream through a JetStream pull consumer (used by :class:`NatsBus`).

Readers that bind to the same durable consumer share its messages: that is the queue
group. A fetch that times out means "nothing yet"; the loop pulls again until the bus
closes. Payloads that are not valid events are dead-lettered and terminated here, so the
handler only ever sees decoded events; so is what JetStream gives up on after the last
allowed delivery (:mod:`tentalis.bus.exhausted`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js import api as js_api

from tentalis.bus.base import ConsumerSpec, Delivery
from tentalis.bus.exhausted import (
    Publish,
    advisory_stream,
    advisory_subject,
    dead_letter_exhausted,
)
from tentalis.bus.wire import check_consumer_name, dead_letter_event, is_dead_letter_subject
from tentalis.errors import BusError, EventDecodeError
from tentalis.events import Event, decode_event, new_id

log = logging.getLogger(__name__)

async def nats_call(op: Awaitable[Any], what: str) -> Any:
    """Await a nats-py call, turning its errors into BusError."""
    try:
        return await op
    except nats.errors.Error as exc:
        raise BusError(f"NATS {what} failed: {type(exc).__name__}: {exc}") from exc


class NatsDelivery:
    """A JetStream message decoded into an event. Settling twice is a no-op."""

    def __init__(self, msg: Msg, event: Event, consumer: str, publish: Publish) -> None:
        meta = msg.metadata
        self.event = event
        self.subject = msg.subject
        self.num_delivered = meta.num_delivered
        self.stream_sequence: int | None = meta.sequence.stream
        self._msg, self._consumer, self._publish = msg, consumer, publish

    async def ack(self) -> None:
        if not self._msg.is_acked:
            await nats_call(self._msg.ack(), "ack")

    async def nak(self, delay: float | None = None) -> None:
        if not self._msg.is_acked:
            await nats_call(self._msg.nak(delay), "nak")

    async def in_progress(self) -> None:
        if not self._msg.is_acked:
            await nats_call(self._msg.in_progress(), "in_progress")

    async def dead_letter(self, reason: str) -> None:
        if not self._msg.is_acked:
            await dead_letter(self._msg, self._consumer, reason, self.event, self._publish)


async def dead_letter(
    msg: Msg, consumer: str, reason: str, event: Event | None, publish: Publish
) -> None:
    """Publish a DeadLetterEvent for ``msg`` (not for a dead letter itself), then term it."""
    meta = msg.metadata
    seq = meta.sequence.stream
    if is_dead_letter_subject(msg.subject):
        log.error("dropping dead letter seq=%s that failed again in %s: %s", seq, consumer, reason)
    else:
        dead = dead_letter_event(
            subject=msg.subject,
            consumer=consumer,
            reason=reason,
            payload=msg.data,
            num_delivered=meta.num_delivered,
            stream_sequence=seq,
            event=event,
        )
        await publish(dead)
        log.warning("dead-lettered %s seq=%s for %s: %s", msg.subject, seq, consumer, reason)
    await nats_call(msg.term(), "term")


def consumer_config(name: str, spec: ConsumerSpec) -> js_api.ConsumerConfig:
    subjects = list(spec.subjects)
    if not subjects:
        raise BusError(f"consumer {spec.name!r} names no subjects")
    return js_api.ConsumerConfig(
        name=name,
        durable_name=name if spec.durable else None,
        deliver_policy=(
            js_api.DeliverPolicy.NEW if spec.deliver == "new" else js_api.DeliverPolicy.ALL
        ),
        ack_policy=js_api.AckPolicy.EXPLICIT,
        ack_wait=spec.ack_wait,
        max_deliver=spec.max_deliver,
        filter_subject=subjects[0] if len(subjects) == 1 else None,
        filter_subjects=subjects if len(subjects) > 1 else None,
        # An ephemeral consumer outlives a crashed reader by this much, then NATS drops it.
        inactive_threshold=None if spec.durable else max(30.0, 5 * spec.fetch_timeout),
    )


async def pull_batches(
    js: JetStreamContext, stream: str, spec: ConsumerSpec, closed: asyncio.Event, publish: Publish
) -> AsyncIterator[list[Delivery]]:
    """Create (or update) the consumer, then yield decoded batches until ``closed`` is set."""
    name = check_consumer_name(spec.name)
    if not spec.durable:
        name = f"{name}-{new_id()[:12]}"
    try:
        await js.add_consumer(stream, config=consumer_config(name, spec))
        sub = await js.pull_subscribe_bind(consumer=name, stream=stream)
    except (nats.errors.Error, ValueError) as exc:
        if closed.is_set():
            return  # the bus closed while the consumer was being set up: nothing to read
        raise BusError(f"cannot create consumer {name!r} on stream {stream}: {exc}") from exc
    # The watch ends on its own event, set when this reader ends for any reason (the bus
    # closing, or the reader's aclose): a cancellation that lands inside nats-py's own
    # awaits can be swallowed there, and then the watch would outlive its reader.
    unwatch = asyncio.Event()
    watcher = asyncio.create_task(
        _watch_exhausted(js, stream, name, spec, closed, unwatch, publish))
    try:
        while not closed.is_set():
            msgs = await _fetch(sub, spec, closed)
            if msgs is None:
                break
            batch: list[Delivery] = []
            for msg in msgs:
                try:
                    event = decode_event(msg.data)
                except EventDecodeError as exc:
                    await dead_letter(msg, spec.name, str(exc), None, publish)
                    continue
                batch.append(NatsDelivery(msg, event, spec.name, publish))
            if batch:
                yield batch
    finally:
        unwatch.set()
        _, running = await asyncio.wait({watcher}, timeout=max(1.0, spec.fetch_timeout))
        for task in running:  # stuck in a nats call: cancel it, and do not wait on it
            task.cancel()
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        if not spec.durable and not closed.is_set():
            with contextlib.suppress(Exception):
                await js.delete_consumer(stream, name)


async def _watch_exhausted(
    js: JetStreamContext,
    stream: str,
    name: str,
    spec: ConsumerSpec,
    closed: asyncio.Event,
    stop: asyncio.Event,
    publish: Publish,
) -> None:
    """Dead-letter what consumer ``name`` gave up on (see :mod:`tentalis.bus.exhausted`),
    until ``stop`` is set (``closed``: the bus closed). Its readers share the watch as they
    share the messages."""
    watch = ConsumerSpec(
        name=f"{name}_exhausted",
        subjects=[advisory_subject(stream, name)],
        batch=16,
        ack_wait=30.0,
        durable=spec.durable,
        fetch_timeout=spec.fetch_timeout,
    )
    where = advisory_stream(stream)

    async def bind() -> JetStreamContext.PullSubscription:
        await js.add_consumer(where, config=consumer_config(watch.name, watch))
        return await js.pull_subscribe_bind(consumer=watch.name, stream=where)

    # the set-up races the reader's end: a request on a closing connection waits for its
    # own timeout, and the reader must not wait for that
    setup, stopping = asyncio.ensure_future(bind()), asyncio.ensure_future(stop.wait())
    await asyncio.wait({setup, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not setup.done():
        setup.cancel()
        return
    try:
        sub = setup.result()
    except (nats.errors.Error, ValueError) as exc:
        if not (closed.is_set() or stop.is_set()):  # else: the reader ended meanwhile
            log.error("consumer %s cannot watch for messages it gives up on: %s", name, exc)
        return
    try:
        while not stop.is_set():
            msgs = await _fetch(sub, watch, stop)
            if msgs is None:
                break
            for msg in msgs:
                try:
                    await dead_letter_exhausted(js, stream, spec.name, msg, publish)
                except Exception:  # the advisory comes back after ack_wait
                    log.exception("consumer %s: dead-lettering a given-up message failed", name)
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        if not spec.durable and not closed.is_set():
            with contextlib.suppress(Exception):
                await js.delete_consumer(where, watch.name)


async def _fetch(
    sub: JetStreamContext.PullSubscription, spec: ConsumerSpec, closed: asyncio.Event
) -> list[Msg] | None:
    """Messages (maybe none) from one pull, or None when the bus closed meanwhile."""
    fetch = asyncio.ensure_future(sub.fetch(spec.batch, timeout=spec.fetch_timeout))
    closing = asyncio.ensure_future(closed.wait())
    try:
        await asyncio.wait({fetch, closing}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (fetch, closing):
            task.cancel()
        # gather, not ``suppress(BaseException)`` around each await: a cancellation of this
        # task that arrives meanwhile must propagate (the exhausted-watch is stopped so)
        await asyncio.gather(fetch, closing, return_exceptions=True)
    if closed.is_set():
        return None  # anything fetched meanwhile is redelivered after ack_wait
    try:
        return fetch.result()
    except (TimeoutError, asyncio.CancelledError):  # nats TimeoutError included
        return []
    except nats.errors.ConnectionClosedError:
        return None
    except nats.errors.Error as exc:  # reconnecting, consumer deleted …: pause, then retry
        log.warning("fetch for consumer %s failed: %s: %s", spec.name, type(exc).__name__, exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closed.wait(), spec.fetch_timeout)
        return []
