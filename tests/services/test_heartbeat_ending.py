"""A service run inside reporting_health ends its health with ``stopped``, or with
``failed`` and the reason when an error leaves it (re-raised, never swallowed)."""

from __future__ import annotations

import asyncio

import pytest

from tentalis.bus.memory import MemoryBus
from tentalis.services.heartbeat import reporting_health


async def _bus() -> MemoryBus:
    bus = MemoryBus()
    await bus.connect()
    return bus


async def test_a_clean_exit_ends_with_stopped() -> None:
    bus = await _bus()
    async with reporting_health(bus, "scorer", "scorer", lambda: {"processed": 3},
                                interval=0.01):
        for _ in range(200):  # the first beat, polled with a deadline
            if "scorer" in await bus.get_health():
                break
            await asyncio.sleep(0.01)
        got = (await bus.get_health())["scorer"]
        assert (got["status"], got["processed"]) == ("running", 3)
    assert (await bus.get_health())["scorer"]["status"] == "stopped"


async def test_an_error_ends_with_failed_and_its_reason_and_propagates() -> None:
    bus = await _bus()
    with pytest.raises(RuntimeError, match="disk full"):
        async with reporting_health(bus, "recorder", "recorder", dict, interval=0.01):
            raise RuntimeError("disk full")
    got = (await bus.get_health())["recorder"]
    assert (got["status"], got["reason"], got["kind"]) == (
        "failed", "RuntimeError: disk full", "recorder")


async def test_a_reason_given_by_the_service_wins() -> None:
    bus = await _bus()
    with pytest.raises(ValueError):
        async with reporting_health(bus, "trainer-01", "trainer", dict) as ending:
            ending.fail("RuntimeError: the step broke")
            raise ValueError("wrapped")
    assert (await bus.get_health())["trainer-01"]["reason"] == "RuntimeError: the step broke"


async def test_a_cancelled_service_ends_with_stopped() -> None:
    bus = await _bus()

    async def service() -> None:
        async with reporting_health(bus, "worker-01", "worker", dict):
            await asyncio.Event().wait()

    task = asyncio.create_task(service())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await bus.get_health())["worker-01"]["status"] == "stopped"
