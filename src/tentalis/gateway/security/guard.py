"""``GatewayGuard``: the pure-ASGI middleware behind :func:`tentalis.gateway.security.secure`.

Pure ASGI (not ``BaseHTTPMiddleware``) so that nothing is buffered: streaming responses
pass straight through and the request body is counted as the app reads it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tentalis.gateway.security.config import SecurityConfig, is_loopback
from tentalis.gateway.security.ratelimit import TokenBucketLimiter, retry_after_header
from tentalis.gateway.security.redaction import redact

log = logging.getLogger("tentalis.gateway")

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 413: "request_too_large", 422: "invalid_request_error",
          429: "rate_limit_error"}


def error_body(status: int, message: str) -> dict[str, Any]:
    """An OpenAI-shaped error body (with FastAPI's ``detail`` alongside)."""
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "code": status}, "detail": message}


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")


def _loopback_client(scope: Scope) -> bool:
    client = scope.get("client")
    return client is None or is_loopback(str(client[0]))


def presented_key(headers: Headers) -> str | None:
    """The API key a request carries (``Authorization: Bearer`` or ``X-API-Key``)."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


class GatewayGuard:
    """Auth → rate limit → body limit → the app, with redacted errors (module doc)."""

    def __init__(self, app: ASGIApp, config: SecurityConfig) -> None:
        self.app = app
        self.config = config
        self.limiter = TokenBucketLimiter(config.rate_limit_per_minute, config.rate_limit_burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":  # no websocket routes: refuse, unauthenticated
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if scope["path"] not in self.config.public_paths:
            identity = self._identify(headers, scope)
            if identity is None:
                await _reply(send, 401, "missing or invalid API key",
                             {"www-authenticate": "Bearer"})
                return
            wait = self.limiter.take(identity)
            if wait > 0:
                await _reply(send, 429, "rate limit exceeded; retry later",
                             {"retry-after": retry_after_header(wait)})
                return
            scope.setdefault("state", {})["api_key_id"] = identity
        limit = self.config.max_body_bytes
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                await _reply(send, 400, "invalid Content-Length")
                return
            if int(length) > limit:
                await _reply(send, 413, f"request body exceeds the limit of {limit} bytes")
                return
        await self._call_counted(scope, receive, send, limit)

    def _identify(self, headers: Headers, scope: Scope) -> str | None:
        """The caller's rate-limit identity, or None if it may not pass."""
        key = presented_key(headers)
        if not self.config.requires_keys:
            if not _loopback_client(scope):
                return None
            return "client-" + str((scope.get("client") or ("local",))[0])
        if key is None:
            return None
        entry = self.config.key_ring.match(key)
        return entry.key_id if entry else None

    async def _call_counted(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge as exc:
            if not started:
                await _reply(send, 413, str(exc.detail))
        except Exception as exc:  # the server keeps serving; the client learns nothing
            log.error("unhandled error on %s %s: %s", scope.get("method"), scope.get("path"),
                      redact(f"{type(exc).__name__}: {exc}"))
            if not started:
                await _reply(send, 500, "internal server error")


async def _reply(send: Send, status: int, message: str,
                 headers: dict[str, str] | None = None) -> None:
    body = json.dumps(error_body(status, message)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
