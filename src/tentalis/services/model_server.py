"""Process entry point of ``tentalis serve-model``: the engine behind the OpenAI API.

Wiring only: settings → security (refusing a non-loopback bind without keys), the engine
INFERENCE_BACKEND names, the adapter store ``<home>/adapters`` → uvicorn on
``GATEWAY_HOST:MODEL_SERVER_PORT``. At start the latest stored version of WORKER_ADAPTER
(if any) is served under that name, so ``model="policy"`` works from the first request,
and later versions follow the ModelUpdateEvents when the bus answers (ModelUpdateFollower).
"""

from __future__ import annotations

import asyncio
import logging

import uvicorn

from tentalis.config import Settings
from tentalis.gateway.adapter_updates import ModelUpdateFollower
from tentalis.gateway.model_server import create_model_app
from tentalis.gateway.security import SecurityConfig, check_bind, install_log_redaction
from tentalis.inference.adapters import AdapterStore
from tentalis.inference.factory import create_inference
from tentalis.services.runtime import setup_logging

log = logging.getLogger(__name__)


async def run_model_server(settings: Settings, port: int | None = None) -> None:
    """Serve the model until SIGINT/SIGTERM."""
    setup_logging(settings)
    install_log_redaction()
    security = SecurityConfig.from_settings(settings)
    check_bind(settings.gateway_host, security)
    inference = await asyncio.to_thread(create_inference, settings)
    store = AdapterStore(settings.tentalis_home / "adapters")
    app = create_model_app(inference, store, security,
                           default_max_tokens=settings.max_new_tokens)
    updates = ModelUpdateFollower.from_settings(app.state.served, settings).start()
    try:
        name = settings.worker_adapter
        if store.versions(name):
            key = await app.state.served.load(name, name)
            log.info("serving %s@%d as %r", *key, name)
        port = port or settings.model_server_port
        log.info("model server for %s on %s:%d (%d API key(s))", inference.model_name,
                 settings.gateway_host, port, len(security.key_ring))
        config = uvicorn.Config(app, host=settings.gateway_host, port=port, log_config=None,
                                lifespan="off", timeout_graceful_shutdown=10)
        await uvicorn.Server(config).serve()
    finally:
        await updates.stop()
        await inference.close()
