"""Heartbeats: each service's entry in the bus's health bucket, read by ``tentalis status``.

A service's last entry says how it ended: ``stopped``, or ``failed`` with a ``reason``
(``"<ExceptionType>: <message>"``) — run the service inside :func:`reporting_health` and an
exception that leaves it is reported that way, then re-raised.

A beat is best effort and never holds the service up: a put that does not finish within
``put_timeout`` seconds is abandoned, a failing put or stats function is logged and the
next beat tries again, and while the bus is unavailable beats are skipped. Services that
must run without the bus (the intercept proxy, the model server) get their bus from an
:class:`OptionalBus`, which connects on demand and retries at most every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tentalis.bus.base import Bus

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
PUT_TIMEOUT_SECONDS = 2.0

BusSource = Callable[[], Awaitable[Bus | None]]
"""Returns the bus to beat on, or None while it is unavailable (that beat is skipped)."""

Stats = Callable[[], dict[str, Any] | Awaitable[dict[str, Any]]]
"""The service's own fields for its health entry (plain or async)."""


class OptionalBus:
    """A bus that may be down: connected on first use, retried at most every ``retry_s``.

    :meth:`get` never waits longer than ``timeout_s`` and returns None while there is no
    connection (before the first one succeeds, and while a connected bus reconnects).
    """

    def __init__(self, connect: Callable[[], Awaitable[Bus]], *, retry_s: float = 5.0,
                 timeout_s: float = 5.0) -> None:
        self._connect = connect
        self.retry_s = retry_s
        self.timeout_s = timeout_s
        self._bus: Bus | None = None
        self._next_try = 0.0
        self._warned = False

    async def get(self) -> Bus | None:
        if self._bus is not None:
            return self._bus if is_up(self._bus) else None
        if time.monotonic() < self._next_try:
            return None
        try:
            self._bus = await asyncio.wait_for(self._connect(), self.timeout_s)
        except Exception as exc:
            self._next_try = time.monotonic() + self.retry_s
            if not self._warned:
                log.info("no bus for heartbeats yet (%s); retrying every %gs", exc, self.retry_s)
                self._warned = True
            return None
        return self._bus

    async def close(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            await bus.close()


def is_up(bus: Bus) -> bool:
    """Whether ``bus`` says its connection is up (buses that cannot tell count as up)."""
    return bool(getattr(bus, "connected", True))


async def heartbeat(
    bus: Bus | BusSource,
    service_id: str,
    kind: str,
    stats: Stats,
    stop: asyncio.Event,
    *,
    interval: float = HEARTBEAT_SECONDS,
    put_timeout: float = PUT_TIMEOUT_SECONDS,
    failure: Callable[[], str | None] | None = None,
) -> None:
    """Publish this service's health every ``interval`` seconds until ``stop``, then a
    last entry: ``stopped``, or ``failed`` with ``reason`` when ``failure()`` names one."""
    source = _source(bus)
    started = time.time()
    while not stop.is_set():
        fields = await _fields(stats)
        await _put(source, service_id, put_timeout, {
            "service": service_id, "kind": kind, "pid": os.getpid(),
            "host": socket.gethostname(), "started_at": started, "last_beat": time.time(),
            "status": "running", **fields,
        })
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
    reason = failure() if failure is not None else None
    end = {"status": "stopped"} if reason is None else {"status": "failed", "reason": reason}
    await _put(source, service_id, put_timeout, {
        "service": service_id, "kind": kind, **end, "last_beat": time.time()})


def failure_reason(exc: BaseException) -> str:
    """A failure as a health entry names it: ``"<ExceptionType>: <message>"``."""
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


@dataclass
class Ending:
    """How a service run inside :func:`reporting_health` ended (None: it stopped)."""

    reason: str | None = None

    def fail(self, reason: str) -> None:
        """Report the service ``failed`` with ``reason`` (the first reason given stays)."""
        if self.reason is None:
            self.reason = reason


@contextlib.asynccontextmanager
async def reporting_health(
    bus: Bus | BusSource,
    service_id: str,
    kind: str,
    stats: Stats,
    *,
    interval: float = HEARTBEAT_SECONDS,
    put_timeout: float = PUT_TIMEOUT_SECONDS,
) -> AsyncIterator[Ending]:
    """Heartbeats while the block runs; the last entry goes out when it ends.

    That entry is ``failed`` with a reason when the block called ``ending.fail(reason)`` or
    an exception left it (the exception is re-raised), else ``stopped``. A cancelled block
    (Ctrl-C, shutdown) counts as stopped."""
    ending = Ending()
    stop = asyncio.Event()
    beat = asyncio.ensure_future(heartbeat(
        bus, service_id, kind, stats, stop, interval=interval, put_timeout=put_timeout,
        failure=lambda: ending.reason))
    try:
        yield ending
    except Exception as exc:
        ending.fail(failure_reason(exc))
        raise
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await beat


def _source(bus: Bus | BusSource) -> BusSource:
    if isinstance(bus, Bus):
        async def fixed() -> Bus | None:
            return bus if is_up(bus) else None

        return fixed
    return bus


async def _fields(stats: Stats) -> dict[str, Any]:
    try:
        out = stats()
        return await out if inspect.isawaitable(out) else out
    except Exception as exc:  # a broken stats function costs the fields, not the beat
        log.warning("heartbeat stats failed: %s: %s", type(exc).__name__, exc)
        return {}


async def _put(source: BusSource, key: str, timeout: float, value: dict[str, Any]) -> None:
    try:
        bus = await source()
        if bus is None:
            log.debug("heartbeat %s skipped: bus unavailable", key)
            return
        await asyncio.wait_for(bus.put_health(key, value), timeout)
    except Exception as exc:  # health is best effort; the service keeps working
        log.debug("heartbeat %s failed: %s: %s", key, type(exc).__name__, exc)
