"""Counting the HTTP requests a gateway server answers, for its heartbeat.

:class:`CountRequests` wraps an ASGI app without changing it: lifespan and websocket
scopes pass through, and every HTTP response but the health check's is counted when its
status line goes out (an app that fails before answering counts as a 5xx).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNCOUNTED_PATHS = frozenset({"/health"})


@dataclass
class RequestCounts:
    requests: int = 0
    """Responses started (every status)."""
    errors: int = 0
    """Of those, 5xx answers (and requests the app failed before answering)."""


class CountRequests:
    """An ASGI app that counts the responses of the app it wraps into ``counts``."""

    def __init__(self, app: ASGIApp, counts: RequestCounts | None = None) -> None:
        self.app = app
        self.counts = counts or RequestCounts()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in UNCOUNTED_PATHS:
            await self.app(scope, receive, send)
            return
        counts = self.counts
        answered = False

        async def counting_send(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = True
                counts.requests += 1
                if message["status"] >= 500:
                    counts.errors += 1
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        except Exception:
            if not answered:
                counts.requests += 1
                counts.errors += 1
            raise
