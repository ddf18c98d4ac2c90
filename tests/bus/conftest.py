"""Bus fixtures: every behaviour test runs on the MemoryBus and on a real nats-server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tentalis.bus import Bus, ConsumerSpec, Delivery, EmbeddedNats, NatsBus
from tentalis.bus.memory import MemoryBus
from tentalis.events import DeadLetterEvent, Subjects


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A fresh nats-server with JetStream on a free loopback port (~60 ms to start)."""
    with EmbeddedNats(tmp_path / "nats") as server:
        yield server


@pytest.fixture(params=["memory", pytest.param("nats", marks=pytest.mark.nats)])
async def bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bus]:
    """A connected bus with an empty stream: MemoryBus, then NatsBus on a real server."""
    if request.param == "memory":
        memory = MemoryBus()
        await memory.connect()
        yield memory
        await memory.close()
        return
    with EmbeddedNats(tmp_path / "nats") as server:
        nats_bus = NatsBus(server.url)
        await nats_bus.connect()
        yield nats_bus
        await nats_bus.close()


async def _take(
    bus: Bus, spec: ConsumerSpec, n: int, *, ack: bool = True, timeout: float = 5.0
) -> list[Delivery]:
    """The first ``n`` deliveries ``spec`` gets (acked unless ``ack=False``)."""
    got: list[Delivery] = []

    async def read() -> None:
        async with contextlib.aclosing(bus.consume(spec)) as batches:  # type: ignore[type-var]
            async for batch in batches:
                for delivery in batch:
                    if ack:
                        await delivery.ack()
                    got.append(delivery)
                if len(got) >= n:
                    return

    await asyncio.wait_for(read(), timeout)
    return got


def _dead_letter_spec(name: str = "dlq-reader") -> ConsumerSpec:
    return ConsumerSpec(name=name, subjects=[Subjects.DEAD_LETTER], fetch_timeout=0.2)


async def _dead_letters(bus: Bus, n: int, timeout: float = 5.0) -> list[DeadLetterEvent]:
    got = await _take(bus, _dead_letter_spec(), n, timeout=timeout)
    events = [d.event for d in got]
    assert all(isinstance(e, DeadLetterEvent) for e in events)
    return events  # type: ignore[return-value]


@pytest.fixture
def take() -> Callable[..., object]:
    """``await take(bus, spec, n, ack=True)``: the first n deliveries ``spec`` gets."""
    return _take


@pytest.fixture
def dead_letters() -> Callable[..., object]:
    """``await dead_letters(bus, n)``: the first n DeadLetterEvents on the bus."""
    return _dead_letters
