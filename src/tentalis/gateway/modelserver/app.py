"""``create_model_app``: the model server's state, guard and routes in one app."""

from __future__ import annotations

from fastapi import FastAPI

from tentalis.gateway.modelserver.routes import router
from tentalis.gateway.modelserver.state import ModelServerState
from tentalis.gateway.security import SecurityConfig, secure
from tentalis.inference.adapters import AdapterStore
from tentalis.inference.base import InferenceClient


def create_model_app(
    inference: InferenceClient,
    adapters: AdapterStore,
    security: SecurityConfig,
    *,
    default_max_tokens: int = 256,
) -> FastAPI:
    """The model server's app; ``app.state.served`` holds the :class:`ServedAdapters`."""
    app = FastAPI(title="tentalis model server", version="1",
                  summary="OpenAI-compatible API over the local engine, with runtime adapters.")
    state = ModelServerState(inference, adapters, security,
                             default_max_tokens=default_max_tokens)
    app.state.model_server = state
    app.state.served = state.served
    app.include_router(router)
    secure(app, security)
    return app
