"""Shared wiring for service processes: connect the bus, report health, stop on signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from tentalis.bus import EmbeddedNats, NatsBus, resolve_nats
from tentalis.config import Settings

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0


def setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@contextlib.asynccontextmanager
async def connected_bus(settings: Settings) -> AsyncIterator[NatsBus]:
    """A connected NatsBus, starting an embedded nats-server when needed (see NATS_EMBEDDED)."""
    url, embedded = await resolve_nats(settings)
    bus = NatsBus(
        url,
        max_age_days=settings.bus_stream_max_age_days,
        connect_timeout=settings.nats_connect_timeout,
    )
    try:
        await bus.connect()
        yield bus
    finally:
        await bus.close()
        if embedded is not None:
            await _stop_embedded(embedded)


async def _stop_embedded(embedded: EmbeddedNats) -> None:
    await asyncio.to_thread(embedded.stop)


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGINT/SIGTERM set ``stop`` so the service drains and exits cleanly."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def heartbeat(
    bus: NatsBus,
    service_id: str,
    kind: str,
    stats: Callable[[], dict[str, Any]],
    stop: asyncio.Event,
) -> None:
    """Publish this service's health every few seconds until ``stop``."""
    started = time.time()
    while not stop.is_set():
        value = {
            "service": service_id,
            "kind": kind,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": started,
            "last_beat": time.time(),
            "status": "running",
            **stats(),
        }
        try:
            await bus.put_health(service_id, value)
        except Exception as exc:  # health is best effort; the service keeps working
            log.debug("heartbeat failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), HEARTBEAT_SECONDS)
    with contextlib.suppress(Exception):
        await bus.put_health(service_id, {"service": service_id, "kind": kind,
                                          "status": "stopped", "last_beat": time.time()})
