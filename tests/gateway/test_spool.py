"""The disk spool and the background publisher: nothing lost, nothing doubled."""

from __future__ import annotations

from pathlib import Path

from tentalis.events import SessionEvent
from tentalis.gateway.publisher import EventPublisher
from tentalis.gateway.spool import Spool


def turn(i: int) -> SessionEvent:
    return SessionEvent(session_id="s", turn_index=i, messages=[{"role": "user", "content": "q"}],
                        completion=f"a{i}")


def test_spool_keeps_order_survives_a_torn_line_and_forgets_a_prefix(spool_path: Path) -> None:
    spool = Spool(spool_path)
    assert not spool and spool.read() == []
    spool.append([turn(0), turn(1)])
    spool.append([turn(2)])
    with spool_path.open("ab") as f:  # a crash mid-write leaves half a line
        f.write(turn(3).to_bytes()[:40])
    assert [e.completion for e in spool.read()] == ["a0", "a1", "a2"]  # type: ignore[attr-defined]
    assert spool.rejected_path.exists()  # the torn line is set aside, not silently lost
    spool.forget(2)
    assert [e.completion for e in spool.read()] == ["a2"]  # type: ignore[attr-defined]
    spool.forget(1)
    assert not spool and not spool_path.exists()


async def test_publisher_spools_while_down_and_replays_once(flaky_bus, spool_path, store,
                                                            gw) -> None:
    spool = Spool(spool_path)
    publisher = EventPublisher(flaky_bus, spool, retry_interval=0.05)
    await publisher.start()
    async with gw.recording(flaky_bus, store):
        first = [turn(i) for i in range(3)]
        for e in first:
            publisher.submit(e)
        assert await publisher.flush()
        flaky_bus.down = True
        down = [turn(i) for i in range(3, 20)]
        for e in down:
            publisher.submit(e)
        assert await publisher.flush()
        assert len(spool) == 17 and not publisher.healthy
        flaky_bus.down = False
        # one spooled event also reached the bus another way (a NATS client buffers what
        # it could not send and sends it on reconnect): the replay must not double it
        await flaky_bus.publish(down[0])
        await gw.wait_for(lambda: not spool and store.counts()["session"] == 20)
        await publisher.close()
    counts = store.counts()
    assert counts["session"] == 20 and counts["total"] == 20  # nothing lost or doubled
    ids = {r[0] for r in store.read("SELECT event_id FROM sessions")}
    assert ids == {e.event_id for e in first + down}
    assert publisher.stats.replayed == 17 and publisher.stats.spooled == 17


async def test_close_spools_what_the_bus_did_not_take(flaky_bus, spool_path) -> None:
    publisher = EventPublisher(flaky_bus, Spool(spool_path), retry_interval=60)
    await publisher.start()
    flaky_bus.down = True
    for i in range(5):
        publisher.submit(turn(i))
    await publisher.close()
    assert len(Spool(spool_path)) == 5
    # the next process replays the file
    flaky_bus.down = False
    again = EventPublisher(flaky_bus, Spool(spool_path), retry_interval=0.05)
    await again.start()
    again.submit(turn(99))
    assert await again.flush()
    await again.close()
    assert not Spool(spool_path)
    assert len((await flaky_bus.info()).subjects) == 1
    assert (await flaky_bus.info()).messages == 6


async def test_publisher_connects_lazily_and_spools_until_it_can(spool_path, flaky_bus) -> None:
    attempts = 0

    async def connect():  # type: ignore[no-untyped-def]
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise OSError("connection refused")
        return flaky_bus

    publisher = EventPublisher(connect, Spool(spool_path), retry_interval=0.05)
    await publisher.start()
    publisher.submit(turn(0))
    assert await publisher.flush()
    assert len(publisher.spool) == 1
    for i in range(1, 4):
        publisher.submit(turn(i))
        await publisher.flush()
    import asyncio

    for _ in range(100):
        if not publisher.spool:
            break
        await asyncio.sleep(0.02)
    await publisher.close()
    assert attempts == 3 and (await flaky_bus.info()).messages == 4
