"""An HTTP service process: an ASGI app under uvicorn that heartbeats while it listens.

The proxy, the bridge and the model server run through :class:`HttpService`, so each
appears in ``tentalis status`` (health key ``<kind>-<port>``) with its port, the requests
it has answered (health checks aside) and the fields its own ``stats`` adds. The
heartbeat is a separate task that starts once the socket is bound; it never delays a
request (see :mod:`tentalis.services.heartbeat`). Its last beat (``stopped``) goes out
from uvicorn's shutdown, because after a SIGTERM uvicorn re-raises the signal as soon as
``serve`` is done and nothing after it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import uvicorn

from tentalis.bus.base import Bus
from tentalis.gateway.request_count import ASGIApp, CountRequests, RequestCounts
from tentalis.services.heartbeat import HEARTBEAT_SECONDS, BusSource, Stats, heartbeat


class _Server(uvicorn.Server):
    """uvicorn's server, calling ``on_shutdown`` once connections are closed."""

    def __init__(self, config: uvicorn.Config, on_shutdown: Callable[[], Awaitable[None]]
                 ) -> None:
        super().__init__(config)
        self._on_shutdown = on_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets=sockets)
        await self._on_shutdown()


class HttpService:
    """``app`` on ``host:port`` (0: a free port) with a heartbeat of kind ``kind``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str,
        port: int,
        kind: str,
        bus: Bus | BusSource,
        stats: Stats | None = None,
        lifespan: Literal["on", "off"] = "on",
        interval: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.kind, self.bus, self.interval = kind, bus, interval
        self._stats = stats
        self.counts = RequestCounts()
        config = uvicorn.Config(CountRequests(app, self.counts), host=host, port=port,
                                log_config=None, lifespan=lifespan,
                                timeout_graceful_shutdown=10)
        self.server = _Server(config, self._end_beats)
        self._port: int | None = None
        self._stop = asyncio.Event()
        self._beats: asyncio.Task[None] | None = None

    @property
    def port(self) -> int | None:
        """The bound port, once listening (kept after the socket closes)."""
        if self._port is None and self.server.started:
            sockets = [s for srv in self.server.servers for s in srv.sockets]
            self._port = int(sockets[0].getsockname()[1]) if sockets else None
        return self._port

    @property
    def service_id(self) -> str:
        return f"{self.kind}-{self.port}"

    async def serve(self) -> None:
        """Serve until uvicorn exits (SIGINT/SIGTERM, or :meth:`stop`)."""
        self._beats = asyncio.create_task(self._beat(self._stop), name=f"{self.kind}-heartbeat")
        try:
            await self.server.serve()
        finally:
            await self._end_beats()

    def stop(self) -> None:
        self.server.should_exit = True

    async def stats(self) -> dict[str, Any]:
        """The fields of this service's health entry besides the common ones."""
        own = self._stats() if self._stats is not None else {}
        if inspect.isawaitable(own):
            own = await own
        return {"port": self.port, "requests": self.counts.requests,
                "errors": self.counts.errors, **own}

    async def _end_beats(self) -> None:
        """Stop the heartbeat after its last (``stopped``) beat."""
        self._stop.set()
        if self._beats is not None:
            with contextlib.suppress(Exception):
                await self._beats

    async def _beat(self, stop: asyncio.Event) -> None:
        while not self.server.started:
            if stop.is_set():
                return
            await asyncio.sleep(0.05)
        await heartbeat(self.bus, self.service_id, self.kind, self.stats, stop,
                        interval=self.interval)
