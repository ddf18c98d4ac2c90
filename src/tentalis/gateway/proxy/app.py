"""``create_proxy_app``: the proxy's state, lifespan, guard and routes in one app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from tentalis.gateway.proxy.config import ProxyConfig
from tentalis.gateway.proxy.routes import router
from tentalis.gateway.proxy.state import ProxyState
from tentalis.gateway.publisher import EventPublisher
from tentalis.gateway.security import SecurityConfig, register_secret, secure


def create_proxy_app(
    config: ProxyConfig,
    publisher: EventPublisher,
    security: SecurityConfig | None = None,
    *,
    client: httpx.AsyncClient | None = None,
) -> FastAPI:
    """The proxy app; it starts and closes ``publisher`` (and its backend client)."""
    state = ProxyState(config, publisher, client)
    if config.backend_api_key is not None:
        register_secret(config.backend_api_key.get_secret_value())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.start()
        try:
            yield
        finally:
            await state.close()

    app = FastAPI(title="tentalis intercept proxy", version="1", lifespan=lifespan,
                  description="OpenAI-compatible; every call is recorded as a SessionEvent.")
    app.state.proxy = state
    if security is not None:
        secure(app, security)
    app.include_router(router)
    return app
