"""``create_bridge_app``: the bridge's state, lifespan, guard and routes in one app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from tentalis.bus.base import Bus
from tentalis.gateway.bridge.routes import router
from tentalis.gateway.bridge.state import BridgeState
from tentalis.gateway.publisher import EventPublisher
from tentalis.gateway.security import SecurityConfig, secure
from tentalis.store import ExperienceStore


def create_bridge_app(
    bus: Bus,
    publisher: EventPublisher,
    store: ExperienceStore,
    security: SecurityConfig | None = None,
    *,
    source: str = "bridge",
) -> FastAPI:
    """The bridge app; it starts and closes ``publisher`` (``bus`` and ``store`` stay open)."""
    state = BridgeState(bus, publisher, store, source)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await publisher.start()
        try:
            yield
        finally:
            await publisher.close()

    app = FastAPI(title="tentalis bridge", version="1", lifespan=lifespan,
                  description="Submit tasks, read their steps, scores and feedback, post "
                  "feedback, follow live events.")
    app.state.bridge = state
    if security is not None:
        secure(app, security)
    app.include_router(router)
    return app
