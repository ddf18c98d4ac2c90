"""Process entry points for the HTTP faces: ``tentalis proxy`` and ``tentalis bridge``.

Wiring only: settings → security, bus, publisher, app → uvicorn on ``GATEWAY_HOST``.
The proxy connects to ``NATS_URL`` in the background and spools events until it answers,
so it serves calls even while the bus is down; the bridge needs the bus to start. Both
heartbeat (kinds ``proxy`` and ``bridge``: port, requests answered, and their publisher's
buffered and spooled events); the proxy's beats use their own connection and are skipped
while the bus is down.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tentalis.bus.base import Bus
from tentalis.config import Settings
from tentalis.gateway.publisher import EventPublisher
from tentalis.gateway.security import (
    SecurityConfig,
    check_bind,
    install_log_redaction,
)
from tentalis.gateway.spool import Spool
from tentalis.services.heartbeat import BusSource, OptionalBus
from tentalis.services.http_service import HttpService
from tentalis.services.runtime import connected_bus, nats_connector, setup_logging

log = logging.getLogger(__name__)


def gateway_children(settings: Settings) -> list[str]:
    """The gateway services ``tentalis serve`` runs: the bridge unless BRIDGE_ENABLED is
    false, the proxy when INTERCEPT_ENABLED is true."""
    return [name for name, on in (("bridge", settings.gateway.bridge_enabled),
                                  ("proxy", settings.gateway.intercept_enabled)) if on]


def _security(settings: Settings) -> SecurityConfig:
    security = SecurityConfig.from_settings(settings)
    check_bind(settings.gateway.host, security)
    return security


async def publisher_stats(publisher: EventPublisher) -> dict[str, Any]:
    """Heartbeat fields of a gateway's publisher: ``buffered`` (in memory, waiting for the
    flusher) and ``spooled`` (on disk, waiting for the bus) now; ``published`` and
    ``replayed`` since start."""
    return {"buffered": publisher.buffered,
            "spooled": await asyncio.to_thread(len, publisher.spool),
            "published": publisher.stats.published, "replayed": publisher.stats.replayed}


async def _serve(app: Any, settings: Settings, port: int, kind: str,
                 bus: Bus | BusSource, publisher: EventPublisher) -> None:
    install_log_redaction()
    service = HttpService(app, host=settings.gateway.host, port=port, kind=kind, bus=bus,
                          stats=lambda: publisher_stats(publisher))
    await service.serve()


async def run_proxy(settings: Settings) -> None:
    """Serve the intercept proxy on INTERCEPT_PORT until SIGINT/SIGTERM."""
    from tentalis.gateway.proxy import create_proxy_app
    from tentalis.gateway.proxy_config import ProxyConfig

    setup_logging(settings)
    config = ProxyConfig.from_settings(settings)

    connect = nats_connector(settings)
    publisher = EventPublisher(connect, Spool(config.spool_path))
    app = create_proxy_app(config, publisher, _security(settings))
    log.info("intercept proxy on %s:%d → %s", settings.gateway.host,
             settings.gateway.intercept_port, config.root)
    beats = OptionalBus(connect)  # not the publisher's: a beat never waits on its flushes
    try:
        await _serve(app, settings, settings.gateway.intercept_port, "proxy", beats.get, publisher)
    finally:
        await beats.close()


async def run_bridge(settings: Settings) -> None:
    """Serve the bridge on BRIDGE_PORT until SIGINT/SIGTERM."""
    from tentalis.gateway.bridge import create_bridge_app
    from tentalis.store import ExperienceStore

    setup_logging(settings)
    security = _security(settings)
    async with connected_bus(settings) as bus:
        store = ExperienceStore(settings.store_path)
        publisher = EventPublisher(bus, Spool(settings.tentalis_home / "spool" / "bridge.jsonl"))
        app = create_bridge_app(bus, publisher, store, security)
        log.info("bridge on %s:%d (NATS %s)", settings.gateway.host, settings.gateway.bridge_port,
                 bus.url)
        try:
            await _serve(app, settings, settings.gateway.bridge_port, "bridge", bus, publisher)
        finally:
            store.close()
