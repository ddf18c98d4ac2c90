"""Process entry points for the HTTP faces: ``tentalis proxy`` and ``tentalis bridge``.

Wiring only: settings → security, bus, publisher, app → uvicorn on ``GATEWAY_HOST``.
The proxy connects to ``NATS_URL`` in the background and spools events until it answers,
so it serves calls even while the bus is down; the bridge needs the bus to start.
"""

from __future__ import annotations

import logging

import uvicorn

from tentalis.bus import NatsBus
from tentalis.config import Settings
from tentalis.gateway.publisher import EventPublisher
from tentalis.gateway.security import (
    SecurityConfig,
    check_bind,
    install_log_redaction,
)
from tentalis.gateway.spool import Spool
from tentalis.services.runtime import connected_bus, setup_logging

log = logging.getLogger(__name__)


def gateway_children(settings: Settings) -> list[str]:
    """The gateway services ``tentalis serve`` runs: the bridge unless BRIDGE_ENABLED is
    false, the proxy when INTERCEPT_ENABLED is true."""
    return [name for name, on in (("bridge", settings.bridge_enabled),
                                  ("proxy", settings.intercept_enabled)) if on]


def _security(settings: Settings) -> SecurityConfig:
    security = SecurityConfig.from_settings(settings)
    check_bind(settings.gateway_host, security)
    return security


async def _serve(app: object, settings: Settings, port: int) -> None:
    install_log_redaction()
    config = uvicorn.Config(app, host=settings.gateway_host, port=port,  # type: ignore[arg-type]
                            log_config=None, lifespan="on", timeout_graceful_shutdown=10)
    await uvicorn.Server(config).serve()


async def run_proxy(settings: Settings) -> None:
    """Serve the intercept proxy on INTERCEPT_PORT until SIGINT/SIGTERM."""
    from tentalis.gateway.proxy import create_proxy_app
    from tentalis.gateway.proxy_config import ProxyConfig

    setup_logging(settings)
    config = ProxyConfig.from_settings(settings)

    async def connect() -> NatsBus:
        bus = NatsBus(settings.nats_url, max_age_days=settings.bus_stream_max_age_days,
                      connect_timeout=settings.nats_connect_timeout)
        await bus.connect()
        return bus

    publisher = EventPublisher(connect, Spool(config.spool_path))
    app = create_proxy_app(config, publisher, _security(settings))
    log.info("intercept proxy on %s:%d → %s", settings.gateway_host, settings.intercept_port,
             config.root)
    await _serve(app, settings, settings.intercept_port)


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
        log.info("bridge on %s:%d (NATS %s)", settings.gateway_host, settings.bridge_port,
                 bus.url)
        try:
            await _serve(app, settings, settings.bridge_port)
        finally:
            store.close()
