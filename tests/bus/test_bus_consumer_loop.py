"""run_consumer / run_batch_consumer: ack on success, retry with backoff, then dead-letter."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from tentalis.bus import (
    Bus,
    ConsumerInfo,
    ConsumerSpec,
    Delivery,
    run_batch_consumer,
    run_consumer,
)
from tentalis.bus.consumer import retry_delay
from tentalis.events import DeadLetterEvent, Subjects, TaskEvent

TASKS = Subjects.task("math")
DeadLetters = Callable[..., Awaitable[list[DeadLetterEvent]]]
WaitFor = Callable[..., Awaitable[None]]


def spec(name: str, **fields: object) -> ConsumerSpec:
    return ConsumerSpec(name, [TASKS], fetch_timeout=0.2, **fields)  # type: ignore[arg-type]


async def consumers(bus: Bus, prefix: str) -> list[ConsumerInfo]:
    """The consumers whose name starts with ``prefix``, as ``bus.info()`` reports them."""
    return [c for c in (await bus.info()).consumers if c.name.startswith(prefix)]


async def settled(bus: Bus, name: str) -> bool:
    """Whether consumer ``name`` has nothing left to deliver or redeliver (acks are
    asynchronous on NATS: poll for this rather than sleep)."""
    return [(c.pending, c.ack_pending) for c in await consumers(bus, name)] == [(0, 0)]


async def stop_and_join(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    stop.set()
    await asyncio.wait_for(task, 2.0)  # returns promptly, not after a fetch timeout


async def test_retry_delay_grows_then_repeats_the_last_step() -> None:
    backoff = (1.0, 5.0, 30.0)
    assert [retry_delay(n, backoff) for n in (1, 2, 3, 4, 9)] == [1.0, 5.0, 30.0, 30.0, 30.0]
    assert retry_delay(3, ()) == 0.0


async def test_handler_success_acks(bus: Bus, wait_for: WaitFor) -> None:
    events = [TaskEvent(prompt=f"q{i}") for i in range(3)]
    for event in events:
        await bus.publish(event)
    seen: list[str] = []
    all_in = asyncio.Event()

    async def handle(delivery: Delivery) -> None:
        seen.append(delivery.event.event_id)
        if len(seen) == len(events):
            all_in.set()

    stop = asyncio.Event()
    loop = asyncio.create_task(run_consumer(bus, spec("ok"), handle, stop=stop))
    await asyncio.wait_for(all_in.wait(), 5)
    await stop_and_join(loop, stop)

    assert seen == [e.event_id for e in events]
    await wait_for(lambda: settled(bus, "ok"), what="pending and ack pending to reach 0")


async def test_failing_handler_retries_then_dead_letters_with_the_reason(
    bus: Bus, dead_letters: DeadLetters
) -> None:
    event = TaskEvent(prompt="poison")
    await bus.publish(event)
    attempts: list[int] = []

    async def handle(delivery: Delivery) -> None:
        attempts.append(delivery.num_delivered)
        raise ValueError("cannot parse the prompt")

    stop = asyncio.Event()
    loop = asyncio.create_task(
        run_consumer(bus, spec("poisoned", max_deliver=3), handle, stop=stop, backoff=(0.05,))
    )
    [dead] = await dead_letters(bus, 1)
    await asyncio.sleep(0.3)  # a further (wrong) redelivery would show up here
    await stop_and_join(loop, stop)

    assert attempts == [1, 2, 3]
    assert dead.reason == "ValueError: cannot parse the prompt"
    assert dead.consumer == "poisoned"
    assert dead.original_subject == TASKS
    assert dead.num_delivered == 3
    assert dead.task_id == event.task_id
    assert event.event_id in dead.payload


async def test_the_loop_survives_a_failure_and_keeps_consuming(bus: Bus) -> None:
    bad, good = TaskEvent(prompt="bad"), TaskEvent(prompt="good")
    await bus.publish(bad)
    await bus.publish(good)
    handled: list[str] = []
    done = asyncio.Event()

    async def handle(delivery: Delivery) -> None:
        prompt = delivery.event.prompt  # type: ignore[attr-defined]
        if prompt == "bad" and delivery.num_delivered == 1:
            raise RuntimeError("transient")
        handled.append(prompt)
        if len(handled) == 2:
            done.set()

    stop = asyncio.Event()
    loop = asyncio.create_task(
        run_consumer(bus, spec("resilient"), handle, stop=stop, backoff=(0.1,))
    )
    await asyncio.wait_for(done.wait(), 5)
    await stop_and_join(loop, stop)
    assert handled == ["good", "bad"]  # bad came back after its backoff


async def test_run_consumer_returns_when_the_bus_closes(bus: Bus, wait_for: WaitFor) -> None:
    async def handle(delivery: Delivery) -> None:  # pragma: no cover - nothing published
        raise AssertionError

    loop = asyncio.create_task(run_consumer(bus, spec("closing"), handle))
    await wait_for(lambda: consumers(bus, "closing"), what="the loop's consumer")
    await bus.close()
    await asyncio.wait_for(loop, 2.0)


async def test_batch_consumer_acks_the_batch_or_retries_each(
    bus: Bus, wait_for: WaitFor
) -> None:
    events = [TaskEvent(prompt=f"q{i}") for i in range(4)]
    for event in events:
        await bus.publish(event)
    calls: list[list[int]] = []
    done = asyncio.Event()

    async def handle(batch: list[Delivery]) -> None:
        calls.append([d.num_delivered for d in batch])
        if len(calls) == 1:
            raise RuntimeError("store is busy")
        if sum(len(c) for c in calls[1:]) == len(events):
            done.set()

    stop = asyncio.Event()
    loop = asyncio.create_task(
        run_batch_consumer(bus, spec("batcher", batch=4), handle, stop=stop, backoff=(0.1,))
    )
    await asyncio.wait_for(done.wait(), 5)
    await stop_and_join(loop, stop)

    assert calls[0] == [1, 1, 1, 1]
    assert [n for c in calls[1:] for n in c] == [2, 2, 2, 2]  # every one retried once
    await wait_for(lambda: settled(bus, "batcher"), what="pending and ack pending to reach 0")


async def test_batch_consumer_dead_letters_each_on_the_last_attempt(
    bus: Bus, dead_letters: DeadLetters
) -> None:
    for i in range(2):
        await bus.publish(TaskEvent(prompt=f"q{i}"))

    async def handle(batch: list[Delivery]) -> None:
        raise KeyError("missing")

    stop = asyncio.Event()
    loop = asyncio.create_task(
        run_batch_consumer(bus, spec("doomed", batch=2, max_deliver=1), handle, stop=stop)
    )
    dead = await dead_letters(bus, 2)
    await stop_and_join(loop, stop)
    assert [d.reason for d in dead] == ["KeyError: 'missing'"] * 2
    assert sorted(d.stream_sequence or 0 for d in dead) == [1, 2]


async def test_a_handler_that_settles_itself_is_not_settled_twice(
    bus: Bus, dead_letters: DeadLetters, caplog: pytest.LogCaptureFixture
) -> None:
    await bus.publish(TaskEvent(prompt="reject me"))
    done = asyncio.Event()

    async def handle(delivery: Delivery) -> None:
        await delivery.dead_letter("rejected by policy")
        done.set()

    stop = asyncio.Event()
    loop = asyncio.create_task(run_consumer(bus, spec("self-settling"), handle, stop=stop))
    [dead] = await dead_letters(bus, 1)
    await asyncio.wait_for(done.wait(), 5)
    await stop_and_join(loop, stop)
    assert dead.reason == "rejected by policy"
    assert dead.num_delivered == 1
    assert "could not settle" not in caplog.text  # the loop's ack after it was a no-op


async def test_stop_mid_batch_releases_the_rest_for_prompt_redelivery(
    bus: Bus, take: Callable[..., Awaitable[list[Delivery]]]
) -> None:
    for i in range(3):
        await bus.publish(TaskEvent(prompt=f"q{i}"))
    stop = asyncio.Event()
    handled: list[str] = []

    async def handle(delivery: Delivery) -> None:
        handled.append(delivery.event.prompt)  # type: ignore[attr-defined]
        stop.set()  # e.g. SIGTERM arrives while the first of the batch is handled

    shared = spec("graceful", batch=3, ack_wait=30)
    await asyncio.wait_for(run_consumer(bus, shared, handle, stop=stop), 5)
    assert handled == ["q0"]

    rest = await take(bus, shared, 2, timeout=3)  # well before ack_wait (30 s)
    assert sorted(d.event.prompt for d in rest) == ["q1", "q2"]  # type: ignore[attr-defined]
    assert [d.num_delivered for d in rest] == [2, 2]


async def test_cancelling_the_loop_closes_its_consumer(bus: Bus, wait_for: WaitFor) -> None:
    async def handle(delivery: Delivery) -> None:  # pragma: no cover - nothing published
        raise AssertionError

    loop = asyncio.create_task(
        run_consumer(bus, spec("cancelled", durable=False), handle, stop=asyncio.Event())
    )
    await wait_for(lambda: consumers(bus, "cancelled"), what="the loop's consumer")
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop

    async def removed() -> bool:
        return not await consumers(bus, "cancelled")

    await wait_for(removed, what="the ephemeral consumer to go")
