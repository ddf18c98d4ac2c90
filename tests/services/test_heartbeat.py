"""Heartbeats are best effort: a hanging or failing bus, or broken stats, never stop them
or the service; an OptionalBus skips beats while down and retries at its own pace."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

from tentalis.bus.base import Bus
from tentalis.bus.memory import MemoryBus
from tentalis.errors import BusError
from tentalis.services import heartbeat as heartbeat_module
from tentalis.services.heartbeat import OptionalBus, heartbeat


class HangingBus(MemoryBus):
    """A bus whose health puts never return."""

    def __init__(self) -> None:
        super().__init__()
        self.puts = 0

    async def put_health(self, key: str, value: dict[str, Any]) -> None:
        self.puts += 1
        await asyncio.Event().wait()


async def test_a_hanging_put_is_abandoned_and_the_beats_go_on(wait_for) -> None:
    bus = HangingBus()
    await bus.connect()
    stop = asyncio.Event()
    beat = asyncio.create_task(heartbeat(bus, "proxy-1", "proxy", dict, stop,
                                         interval=0.01, put_timeout=0.05))
    await wait_for(lambda: bus.puts >= 3, what="three beats")  # each put hangs: abandoned
    stop.set()
    await asyncio.wait_for(beat, 1.0)  # the last (stopped) put is abandoned too
    assert bus.puts >= 3


async def test_broken_stats_cost_the_fields_not_the_beat(wait_for) -> None:
    bus = MemoryBus()
    await bus.connect()
    stop = asyncio.Event()

    def broken() -> dict[str, Any]:
        raise RuntimeError("bug in stats")

    beat = asyncio.create_task(heartbeat(bus, "bridge-1", "bridge", broken, stop, interval=0.01))

    async def beaten() -> bool:
        return "bridge-1" in await bus.get_health()

    await wait_for(beaten, what="the first beat")
    got = (await bus.get_health())["bridge-1"]
    stop.set()
    await beat
    assert (got["kind"], got["status"]) == ("bridge", "running")


async def test_optional_bus_skips_while_down_and_retries_at_most_every_retry_s(
    monkeypatch,
) -> None:
    now = 100.0  # the clock OptionalBus reads: moved by hand, so no call races retry_s
    clock = SimpleNamespace(monotonic=lambda: now, time=time.time)
    monkeypatch.setattr(heartbeat_module, "time", clock)
    tries = 0
    up = MemoryBus()

    async def connect() -> Bus:
        nonlocal tries
        tries += 1
        if tries < 3:
            raise BusError("down (test)")
        await up.connect()
        return up

    optional = OptionalBus(connect, retry_s=0.05)
    assert await optional.get() is None
    assert await optional.get() is None  # within retry_s: no new attempt
    assert tries == 1
    now += 0.06
    assert await optional.get() is None and tries == 2
    now += 0.06
    assert await optional.get() is up and tries == 3
    up.connected = False  # type: ignore[attr-defined]  # as NatsBus says while reconnecting
    assert await optional.get() is None
    await optional.close()
