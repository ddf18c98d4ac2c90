"""Process entry points for the HTTP faces: ``tentalis proxy`` and ``tentalis bridge``.

Wiring only: settings → security, bus, publisher, app → uvicorn on ``GATEWAY_HOST``; the
settings → config functions of every gateway server (:func:`security_config`,
:func:`proxy_config`) live here, so nothing under ``tentalis.gateway`` reads settings.
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

from pydantic import ValidationError

from tentalis.bus.base import Bus
from tentalis.config import Settings
from tentalis.errors import ConfigError
from tentalis.gateway.proxy.config import ProxyConfig
from tentalis.gateway.publisher import EventPublisher
from tentalis.gateway.security import (
    KeyRing,
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


def security_config(settings: Settings) -> SecurityConfig:
    """Keys from ``GATEWAY_API_KEYS`` and the key file; limits from ``GATEWAY_*``."""
    key_file = settings.gateway.api_key_file
    if key_file is None and (settings.tentalis_home / "gateway_keys").is_file():
        key_file = settings.tentalis_home / "gateway_keys"
    env = settings.gateway.api_keys.get_secret_value() if settings.gateway.api_keys else None
    ring = KeyRing.load(key_file, env)
    hashes = tuple(f"hmac-sha256${e.salt.hex()}${e.digest.hex()}" for e in ring.entries)
    return SecurityConfig(
        key_hashes=hashes,
        max_body_bytes=settings.gateway.max_body_bytes,
        max_n=settings.gateway.max_n,
        max_tokens=settings.gateway.max_tokens,
        max_messages=settings.gateway.max_messages,
        rate_limit_per_minute=settings.gateway.rate_limit_per_minute,
    )


def proxy_config(settings: Settings, **overrides: Any) -> ProxyConfig:
    """The proxy's config. Unset INTERCEPT_BACKEND_URL means tentalis's own model server
    (which ``tentalis serve`` runs unless MODEL_SERVER_ENABLED is false)."""
    backend = settings.gateway.intercept_backend_url
    if not backend:
        if not settings.gateway.model_server_enabled:
            raise ConfigError(
                "INTERCEPT_BACKEND_URL is unset and MODEL_SERVER_ENABLED is false: the "
                "proxy has nothing to forward to; set INTERCEPT_BACKEND_URL (e.g. "
                "http://localhost:11434/v1) or enable the model server")
        backend = f"http://127.0.0.1:{settings.gateway.model_server_port}/v1"
    try:
        return ProxyConfig(
            backend_url=backend,
            backend_api_key=settings.gateway.intercept_backend_api_key,
            timeout_s=settings.gateway.intercept_timeout_seconds,
            training_data=settings.gateway.intercept_training_data,
            session_min_messages=settings.gateway.intercept_session_min_messages,
            side_turn_pattern=settings.gateway.intercept_side_turn_pattern,
            spool_path=settings.tentalis_home / "spool" / "proxy.jsonl",
            **overrides,
        )
    except ValidationError as exc:  # the message only: the input may hold a secret
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise ConfigError(f"proxy setting {where}: {first.get('msg')}") from None


def _security(settings: Settings) -> SecurityConfig:
    security = security_config(settings)
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

    setup_logging(settings)
    config = proxy_config(settings)

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
