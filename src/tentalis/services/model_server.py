"""Process entry point of ``tentalis serve-model``: the engine behind the OpenAI API.

Wiring only: settings → security (refusing a non-loopback bind without keys), the engine
INFERENCE_BACKEND names, the adapter store ``<home>/adapters`` → uvicorn on
``GATEWAY_HOST:MODEL_SERVER_PORT``. At start the latest stored version of WORKER_ADAPTER
(if any) is served under that name, so ``model="policy"`` works from the first request,
and later versions follow the ModelUpdateEvents when the bus answers (ModelUpdateFollower).
It heartbeats (kind ``model-server``: port, requests answered, model, loaded adapters) on
NATS_URL when that answers; without a bus it serves all the same and skips the beats.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import FastAPI

from tentalis.config import Settings
from tentalis.gateway.modelserver import ModelUpdateFollower, create_model_app
from tentalis.gateway.security import check_bind, install_log_redaction
from tentalis.inference.adapters import AdapterStore, ServedAdapters
from tentalis.inference.factory import create_inference
from tentalis.services.gateway import security_config
from tentalis.services.heartbeat import OptionalBus
from tentalis.services.http_service import HttpService
from tentalis.services.runtime import nats_connector, setup_logging

log = logging.getLogger(__name__)


def model_update_follower(served: ServedAdapters, settings: Settings) -> ModelUpdateFollower:
    """Following NATS_URL (never starting a server) as MODEL_SERVER_ID, for WORKER_ADAPTER."""
    return ModelUpdateFollower(served, nats_connector(settings),
                               server_id=settings.gateway.model_server_id,
                               adapter=settings.worker.follow_adapter)


def model_server_stats(app: FastAPI) -> dict[str, Any]:
    """Heartbeat fields: the base model and the adapter names a request may use."""
    served = app.state.served
    return {"model": served.inference.model_name, "adapters": served.model_ids()[1:]}


async def run_model_server(settings: Settings, port: int | None = None) -> None:
    """Serve the model until SIGINT/SIGTERM."""
    setup_logging(settings)
    install_log_redaction()
    security = security_config(settings)
    check_bind(settings.gateway.host, security)
    inference = await asyncio.to_thread(create_inference, settings)
    store = AdapterStore(settings.tentalis_home / "adapters")
    app = create_model_app(inference, store, security,
                           default_max_tokens=settings.inference.max_new_tokens)
    updates = model_update_follower(app.state.served, settings).start()
    try:
        name = settings.worker.follow_adapter
        if store.versions(name):
            key = await app.state.served.load(name, name)
            log.info("serving %s@%d as %r", *key, name)
        port = port or settings.gateway.model_server_port
        log.info("model server for %s on %s:%d (%d API key(s))", inference.model_name,
                 settings.gateway.host, port, len(security.key_ring))
        beats = OptionalBus(nats_connector(settings))
        try:
            await HttpService(app, host=settings.gateway.host, port=port, kind="model-server",
                              bus=beats.get, stats=lambda: model_server_stats(app),
                              lifespan="off").serve()
        finally:
            await beats.close()
    finally:
        await updates.stop()
        await inference.close()
