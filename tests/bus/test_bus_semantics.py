"""The Bus contract, run against the MemoryBus and a real NATS JetStream server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import pytest

from tentalis.bus import Bus, ConsumerInfo, ConsumerSpec, Delivery
from tentalis.errors import BusError
from tentalis.events import DeadLetterEvent, FeedbackEvent, Subjects, TaskEvent

Take = Callable[..., Awaitable[list[Delivery]]]
DeadLetters = Callable[..., Awaitable[list[DeadLetterEvent]]]
WaitFor = Callable[..., Awaitable[None]]

FAST = {"fetch_timeout": 0.2}
TASKS = Subjects.task("math")


def task(prompt: str = "2+2?", **fields: object) -> TaskEvent:
    return TaskEvent(prompt=prompt, **fields)  # type: ignore[arg-type]


async def consumer(bus: Bus, name: str) -> ConsumerInfo | None:
    """The consumer ``name`` as ``bus.info()`` reports it; None while it does not exist."""
    return next((c for c in (await bus.info()).consumers if c.name == name), None)


async def settled(bus: Bus, name: str) -> bool:
    """Whether consumer ``name`` has nothing left to deliver or redeliver."""
    c = await consumer(bus, name)
    return c is not None and (c.pending, c.ack_pending) == (0, 0)


async def test_publish_then_consume_roundtrip(bus: Bus, take: Take) -> None:
    sent = task("What is 3 + 4?", answer="7", metadata={"k": [1, 2]})
    assert await bus.publish(sent) is True

    [got] = await take(bus, ConsumerSpec("roundtrip", [Subjects.TASKS_ALL], **FAST), 1)

    assert isinstance(bus, Bus) and isinstance(got, Delivery)  # the runtime protocols hold
    assert got.event == sent
    assert isinstance(got.event, TaskEvent)
    assert got.subject == TASKS
    assert got.num_delivered == 1
    assert got.stream_sequence == 1


async def test_same_event_id_is_stored_once(bus: Bus) -> None:
    event = task()
    assert await bus.publish(event) is True
    assert await bus.publish(event) is False
    assert await bus.publish(task()) is True

    info = await bus.info()
    assert info.messages == 2
    assert info.subjects == {TASKS: 2}


async def test_publish_outside_the_stream_is_refused(bus: Bus) -> None:
    with pytest.raises(BusError, match="no stream stores subject"):
        await bus.publish_raw("elsewhere.subject", b"{}")


async def test_one_durable_name_splits_the_work_another_name_sees_all(
    bus: Bus, take: Take, wait_for: WaitFor
) -> None:
    n = 20
    sent = [task(f"q{i}") for i in range(n)]
    for event in sent:
        await bus.publish(event)
    shared = ConsumerSpec("workers", [Subjects.TASKS_ALL], **FAST)
    seen: dict[str, list[str]] = {"a": [], "b": []}
    all_in = asyncio.Event()

    async def worker(key: str) -> None:
        async for batch in bus.consume(shared):
            for delivery in batch:
                seen[key].append(delivery.event.event_id)
                await asyncio.sleep(0.01)  # work, so the other reader gets its turn
                await delivery.ack()
            if len(seen["a"]) + len(seen["b"]) >= n:
                all_in.set()

    workers = [asyncio.create_task(worker("a")), asyncio.create_task(worker("b"))]
    try:
        await asyncio.wait_for(all_in.wait(), 10)
        # every delivery acked: from here on no duplicate can arrive
        await wait_for(lambda: settled(bus, "workers"), what="the acks")
    finally:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    ids = {e.event_id for e in sent}
    assert len(seen["a"]) + len(seen["b"]) == n
    assert set(seen["a"]).isdisjoint(seen["b"])
    assert set(seen["a"]) | set(seen["b"]) == ids
    assert seen["a"] and seen["b"], "both readers of one durable name should get work"

    audit = await take(bus, ConsumerSpec("audit", [Subjects.TASKS_ALL], **FAST), n)
    assert {d.event.event_id for d in audit} == ids


async def test_filters_use_nats_wildcards_and_several_subjects(bus: Bus, take: Take) -> None:
    await bus.publish(task(environment="math"))
    await bus.publish(task(environment="chat"))
    await bus.publish(task(environment="swe"))
    spec = ConsumerSpec("two-envs", [Subjects.task("math"), "tentalis.ev.*.chat"], batch=10, **FAST)
    got = await take(bus, spec, 2)
    assert sorted(d.event.environment for d in got) == ["chat", "math"]  # type: ignore[attr-defined]
    [reader] = [c for c in (await bus.info()).consumers if c.name == "two-envs"]
    assert reader.pending == 0  # the swe task never matched


async def test_unacked_delivery_comes_back_after_ack_wait(bus: Bus) -> None:
    sent = task()
    await bus.publish(sent)
    spec = ConsumerSpec("slow", [TASKS], ack_wait=1.0, **FAST)
    deliveries: list[tuple[float, Delivery]] = []
    async for batch in bus.consume(spec):
        deliveries.append((time.monotonic(), batch[0]))  # never acked the first time
        if len(deliveries) == 2:
            await batch[0].ack()
            break

    (t1, first), (t2, second) = deliveries
    assert first.event.event_id == second.event.event_id == sent.event_id
    assert (first.num_delivered, second.num_delivered) == (1, 2)
    assert t2 - t1 >= 0.8, "redelivered before ack_wait expired"


async def test_a_stuck_readers_message_goes_to_another_reader(
    bus: Bus, take: Take, wait_for: WaitFor
) -> None:
    shared = ConsumerSpec("pool", [TASKS], ack_wait=1.0, **FAST)
    # Two readers wait; whichever gets the task stops reading and never acks it.
    readers = [asyncio.create_task(take(bus, shared, 1, ack=False)) for _ in range(2)]
    await wait_for(lambda: consumer(bus, "pool"), what="the readers' consumer")
    sent = task()
    await bus.publish(sent)
    [first], [second] = await asyncio.wait_for(asyncio.gather(*readers), 5)
    assert first.event.event_id == second.event.event_id == sent.event_id
    assert sorted([first.num_delivered, second.num_delivered]) == [1, 2]


async def test_nak_with_delay_redelivers_after_the_delay(bus: Bus) -> None:
    await bus.publish(task())
    spec = ConsumerSpec("naker", [TASKS], ack_wait=30.0, **FAST)
    times: list[float] = []
    async for batch in bus.consume(spec):
        times.append(time.monotonic())
        if len(times) == 1:
            await batch[0].nak(delay=0.6)
        else:
            assert batch[0].num_delivered == 2
            await batch[0].ack()
            break
    assert 0.5 <= times[1] - times[0] < 5.0  # the delay, not ack_wait (30 s)


async def test_malformed_payloads_are_dead_lettered_and_the_consumer_goes_on(
    bus: Bus, take: Take, dead_letters: DeadLetters
) -> None:
    await bus.publish_raw(TASKS, b"{not json")
    await bus.publish_raw(TASKS, json.dumps({"kind": "bogus", "event_id": "x"}).encode())
    good = task()
    await bus.publish(good)

    got = await take(bus, ConsumerSpec("parser", [TASKS], **FAST), 1)
    assert [d.event.event_id for d in got] == [good.event_id]

    bad_json, bad_kind = sorted(await dead_letters(bus, 2), key=lambda e: e.stream_sequence or 0)
    assert "Invalid JSON" in bad_json.reason
    assert bad_json.payload == "{not json"
    assert "'bogus'" in bad_kind.reason
    for dead, seq in ((bad_json, 1), (bad_kind, 2)):
        assert dead.original_subject == TASKS
        assert dead.consumer == "parser"
        assert dead.stream_sequence == seq
        assert dead.num_delivered == 1
    info = await bus.info()
    [parser] = [c for c in info.consumers if c.name == "parser"]
    assert (parser.pending, parser.ack_pending) == (0, 0)  # terminated, never coming back


async def test_a_message_whose_last_delivery_dies_unsettled_is_dead_lettered(
    bus: Bus, take: Take, dead_letters: DeadLetters
) -> None:
    sent = task()
    await bus.publish(sent)
    spec = ConsumerSpec("mortal", [TASKS], max_deliver=2, ack_wait=0.5, **FAST)
    # Two readers in turn take the task and die before settling it; the second delivery
    # is the last one JetStream makes, so nothing but a dead letter can keep the reason.
    [first] = await take(bus, spec, 1, ack=False)
    [last] = await take(bus, spec, 1, ack=False)
    assert (first.num_delivered, last.num_delivered) == (1, 2)

    survivor = asyncio.create_task(take(bus, spec, 1, timeout=30))  # a restarted reader
    try:
        [dead] = await dead_letters(bus, 1, timeout=10.0)
    finally:
        survivor.cancel()
        await asyncio.gather(survivor, return_exceptions=True)

    assert survivor.cancelled(), "the exhausted message was delivered a third time"
    assert dead.consumer == "mortal" and dead.original_subject == TASKS
    assert dead.stream_sequence == 1 and dead.num_delivered == 2
    assert dead.task_id == sent.task_id
    assert "2 deliveries" in dead.reason and "no ack" in dead.reason
    assert json.loads(dead.payload)["event_id"] == sent.event_id


async def test_close_ends_a_waiting_consumer(bus: Bus, wait_for: WaitFor) -> None:
    async def read() -> int:
        count = 0
        async for _ in bus.consume(ConsumerSpec("idle", [TASKS], fetch_timeout=5.0)):
            count += 1
        return count

    reader = asyncio.create_task(read())
    await wait_for(lambda: consumer(bus, "idle"), what="the reader's consumer")
    started = time.monotonic()
    await bus.close()
    assert await asyncio.wait_for(reader, 2.0) == 0
    assert time.monotonic() - started < 1.0  # did not wait for the 5 s fetch


async def test_deliver_new_skips_the_backlog(bus: Bus, wait_for: WaitFor) -> None:
    await bus.publish(task("old"))
    spec = ConsumerSpec("fresh", [TASKS], deliver="new", **FAST)

    async def first() -> str:
        async for batch in bus.consume(spec):
            await batch[0].ack()
            return batch[0].event.prompt  # type: ignore[attr-defined]
        return ""

    reader = asyncio.create_task(first())
    await wait_for(lambda: consumer(bus, "fresh"), what="the consumer")  # before the publish
    await bus.publish(task("new"))
    assert await asyncio.wait_for(reader, 5.0) == "new"


async def test_request_serve_and_error_reply(bus: Bus) -> None:
    async def shout(payload: bytes) -> bytes:
        if payload == b"fail":
            raise RuntimeError("nope")
        return payload.upper()

    stop = await bus.serve(Subjects.MANAGER_ASK, shout, queue="managers")
    assert await bus.request(Subjects.MANAGER_ASK, b"hi", timeout=2) == b"HI"
    error = json.loads(await bus.request(Subjects.MANAGER_ASK, b"fail", timeout=2))
    assert error == {"error": "RuntimeError: nope"}
    assert await bus.request(Subjects.MANAGER_ASK, b"again", timeout=2) == b"AGAIN"

    await stop()
    with pytest.raises(BusError):
        await bus.request(Subjects.MANAGER_ASK, b"hi", timeout=0.5)


async def test_request_times_out_with_bus_error(bus: Bus) -> None:
    async def slow(payload: bytes) -> bytes:
        await asyncio.sleep(5)
        return payload

    stop = await bus.serve("tentalis.rpc.slow", slow)
    with pytest.raises(BusError, match="no reply"):
        await bus.request("tentalis.rpc.slow", b"x", timeout=0.3)
    await stop()


async def test_health_put_get(bus: Bus) -> None:
    assert await bus.get_health() == {}
    await bus.put_health("worker.01", {"status": "starting"})
    await bus.put_health("worker.01", {"status": "running", "n": 3})
    await bus.put_health("manager 01/α", {"status": "running"})

    health = await bus.get_health()
    assert health == {
        "worker_01": {"status": "running", "n": 3},
        "manager_01__": {"status": "running"},
    }


async def test_info_reports_consumer_pending_counts(
    bus: Bus, take: Take, wait_for: WaitFor
) -> None:
    for i in range(3):
        await bus.publish(task(f"q{i}"))
    [held] = await take(bus, ConsumerSpec("counter", [TASKS], **FAST), 1, ack=False)

    info = await bus.info()
    assert info.stream == Subjects.STREAM
    assert info.messages == 3
    assert info.bytes > 0
    [counter] = [c for c in info.consumers if c.name == "counter"]
    assert (counter.pending, counter.ack_pending, counter.redelivered) == (2, 1, 0)
    assert counter.filter_subjects == [TASKS]

    await held.ack()

    async def acked() -> bool:  # the ack is asynchronous on NATS
        c = await consumer(bus, "counter")
        return c is not None and c.ack_pending == 0

    await wait_for(acked, what="the ack")


async def test_invalid_consumer_name_is_a_bus_error(bus: Bus) -> None:
    with pytest.raises(BusError, match="invalid consumer name"):
        await anext(aiter(bus.consume(ConsumerSpec("workers.math", [TASKS]))))


async def test_using_a_closed_bus_is_a_bus_error(bus: Bus) -> None:
    await bus.close()
    with pytest.raises(BusError, match="not connected"):
        await bus.publish(task())


async def test_a_durable_consumer_keeps_its_place_between_readers(bus: Bus, take: Take) -> None:
    first, second = task("first"), task("second")
    await bus.publish(first)
    await bus.publish(second)
    durable = ConsumerSpec("keeper", [TASKS], **FAST)
    assert [d.event for d in await take(bus, durable, 1)] == [first]
    assert [d.event for d in await take(bus, durable, 1)] == [second]  # a new reader resumes


async def test_an_ephemeral_consumer_starts_over_and_is_removed(bus: Bus, take: Take) -> None:
    await bus.publish(task("only"))
    ephemeral = ConsumerSpec("peek", [TASKS], durable=False, **FAST)
    for _ in range(2):  # each ephemeral reader sees the whole log
        [got] = await take(bus, ephemeral, 1)
        assert got.event.prompt == "only"  # type: ignore[attr-defined]
    assert not [c for c in (await bus.info()).consumers if c.name.startswith("peek")]


async def test_listen_sees_live_events_until_stopped(bus, wait_for: WaitFor) -> None:
    seen: list[str] = []

    async def on_event(event) -> None:
        seen.append(event.event_id)

    stop = await bus.listen([Subjects.FEEDBACK_ALL], on_event)
    first = FeedbackEvent(task_id="t1", score=1.0, feedback="ok")
    await bus.publish(first)
    await bus.publish(TaskEvent(prompt="not listened to"))
    await bus.publish_raw(Subjects.feedback("math"), b"{not json")  # skipped, no crash
    await wait_for(lambda: seen, what="the live event")
    await stop()
    await bus.publish(FeedbackEvent(task_id="t2", score=0.0, feedback="late"))
    await asyncio.sleep(0.1)
    assert seen == [first.event_id]
