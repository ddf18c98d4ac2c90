"""Shared wiring for service processes: connect the bus, report health, stop on signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable

from tentalis.bus import EmbeddedNats, NatsBus, resolve_nats
from tentalis.config import Settings
from tentalis.services.heartbeat import heartbeat

__all__ = ["connected_bus", "heartbeat", "nats_connector", "setup_logging",
           "stop_on_signals"]


def setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def nats_connector(settings: Settings) -> Callable[[], Awaitable[NatsBus]]:
    """A coroutine function connecting a new NatsBus to NATS_URL (no embedded server)."""

    async def connect() -> NatsBus:
        bus = NatsBus(settings.bus.url, max_age_days=settings.bus.stream_max_age_days,
                      connect_timeout=settings.bus.connect_timeout)
        await bus.connect()
        return bus

    return connect


@contextlib.asynccontextmanager
async def connected_bus(settings: Settings) -> AsyncIterator[NatsBus]:
    """A connected NatsBus, starting an embedded nats-server when needed (see NATS_EMBEDDED)."""
    url, embedded = await resolve_nats(settings)
    bus = NatsBus(
        url,
        max_age_days=settings.bus.stream_max_age_days,
        connect_timeout=settings.bus.connect_timeout,
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
