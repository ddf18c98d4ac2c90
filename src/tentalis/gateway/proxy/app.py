"""``create_proxy_app``: the proxy's state, lifespan, guard and routes in one app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tentalis.gateway.proxy.config import ProxyConfig
from tentalis.gateway.proxy.routes import router
from tentalis.gateway.proxy.sessions import SESSION_HEADER, SessionHeaderError, check_id
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
    app.add_middleware(EchoSessionId)  # added last: outermost, it sees the guard's answers
    app.include_router(router)
    return app


class EchoSessionId:
    """Answers that never reached a session (refused by the guard, a body that does not
    parse) still carry the client's own ``X-Session-Id``, when it sent a valid one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sid = dict(scope.get("headers") or []).get(SESSION_HEADER.encode()) \
            if scope["type"] == "http" else None
        try:
            valid = sid is not None and bool(check_id(sid.decode("latin-1"), "X-Session-Id"))
        except SessionHeaderError:
            valid = False
        if not valid:
            await self.app(scope, receive, send)
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                if not any(k.lower() == SESSION_HEADER.encode() for k, _ in headers):
                    message = {**message, "headers": [*headers, (SESSION_HEADER.encode(), sid)]}
            await send(message)

        await self.app(scope, receive, send_with_id)
