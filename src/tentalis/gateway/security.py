"""Security for every gateway server: API keys, body limits, caps, rate limits, redaction.

:func:`secure` wraps a FastAPI app in one pure-ASGI guard that, for each HTTP request:

1. lets ``public_paths`` (health only) through without a key;
2. checks the API key (``Authorization: Bearer <key>`` or ``X-API-Key: <key>``) against
   salted digests in constant time → 401, the same answer for a missing and a wrong key;
3. takes a token from the key's bucket → 429 with ``Retry-After``;
4. refuses a ``Content-Length`` over ``max_body_bytes`` → 413 before reading anything,
   and counts the bytes of a body without one (chunked) as the app reads them → 413 as
   soon as the count passes the limit; the body is never buffered by the guard;
5. turns an unhandled error into a 500 whose message says nothing of the request.

Error bodies have OpenAI's shape (``{"error": {"message", "type", "code"}}``, plus
``detail`` for FastAPI clients) and pass through :func:`redact`.

**Without keys.** A server with no keys configured serves only loopback clients, and
:func:`check_bind` refuses to start it on a non-loopback address: binding to 127.0.0.1
(the default) keeps a single-user machine convenient, and exposing a server on the network
requires keys. Configure keys with ``GATEWAY_API_KEYS`` or a key file
(``tentalis keys add``).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from starlette.exceptions import HTTPException as StarletteHTTPException

from tentalis.errors import ConfigError
from tentalis.gateway.guard import GatewayGuard, error_body
from tentalis.gateway.keys import KeyEntry, KeyRing, add_key, generate_key, hash_key
from tentalis.gateway.redaction import (
    RedactingFilter,
    install_log_redaction,
    redact,
    register_key_ring,
    register_secret,
)

__all__ = [
    "RedactingFilter",
    "SecurityConfig",
    "add_key",
    "check_bind",
    "check_caps",
    "generate_key",
    "hash_key",
    "install_log_redaction",
    "is_loopback",
    "redact",
    "register_secret",
    "secure",
]

log = logging.getLogger(__name__)


class SecurityConfig(BaseModel):
    """How a gateway server guards itself; see the module doc for the behaviour."""

    model_config = ConfigDict(frozen=True)

    key_hashes: tuple[str, ...] = Field(
        default=(), description="Accepted keys as `hmac-sha256$salt$digest` entries."
    )
    max_body_bytes: int = Field(default=4 << 20, ge=1, description="Largest request body.")
    max_n: int = Field(default=8, ge=1, description="Largest `n` (choices per request).")
    max_tokens: int = Field(default=4096, ge=1, description="Largest `max_tokens`.")
    max_messages: int = Field(default=256, ge=1, description="Most messages/prompts per call.")
    rate_limit_per_minute: int = Field(default=600, ge=0, description="Per key; 0 = off.")
    rate_limit_burst: int | None = Field(default=None, ge=1, description="Default: 1 minute.")
    public_paths: tuple[str, ...] = Field(default=("/health",), description="No key needed.")

    _ring: KeyRing = PrivateAttr(default_factory=KeyRing)

    def model_post_init(self, __context: Any) -> None:
        try:
            self._ring = KeyRing([KeyEntry.parse(h) for h in self.key_hashes])
        except ValueError as exc:
            raise ConfigError(f"invalid API key hash: {exc}") from None

    @property
    def key_ring(self) -> KeyRing:
        return self._ring

    @property
    def requires_keys(self) -> bool:
        return bool(self._ring)

    @classmethod
    def with_keys(cls, *keys: str, **fields: Any) -> SecurityConfig:
        """A config accepting these plaintext keys (hashed here; for tests and scripts)."""
        return cls(key_hashes=tuple(hash_key(k) for k in keys), **fields)

    @classmethod
    def from_settings(cls, settings: Any) -> SecurityConfig:
        """Keys from ``GATEWAY_API_KEYS`` and the key file; limits from ``GATEWAY_*``."""
        key_file = settings.gateway.api_key_file
        if key_file is None and (settings.tentalis_home / "gateway_keys").is_file():
            key_file = settings.tentalis_home / "gateway_keys"
        env = settings.gateway.api_keys.get_secret_value() if settings.gateway.api_keys else None
        ring = KeyRing.load(key_file, env)
        hashes = tuple(f"hmac-sha256${e.salt.hex()}${e.digest.hex()}" for e in ring.entries)
        return cls(
            key_hashes=hashes,
            max_body_bytes=settings.gateway.max_body_bytes,
            max_n=settings.gateway.max_n,
            max_tokens=settings.gateway.max_tokens,
            max_messages=settings.gateway.max_messages,
            rate_limit_per_minute=settings.gateway.rate_limit_per_minute,
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, config: SecurityConfig) -> None:
    """Refuse to serve on a non-loopback address without API keys."""
    if not config.requires_keys and not is_loopback(host):
        raise ConfigError(
            f"refusing to bind {host} without API keys: anyone on the network could use "
            f"the server. Add a key (`tentalis keys add`, or GATEWAY_API_KEYS) or bind "
            f"127.0.0.1."
        )


def check_caps(
    n: int | None,
    max_tokens: int | None,
    messages: Sequence[Any] | None,
    config: SecurityConfig,
) -> None:
    """Refuse (HTTP 400) a request over the configured caps, saying which and by how much."""
    problems = []
    if n is not None and not 1 <= n <= config.max_n:
        problems.append(f"n={n} is outside 1..{config.max_n}")
    if max_tokens is not None and not 1 <= max_tokens <= config.max_tokens:
        problems.append(f"max_tokens={max_tokens} is outside 1..{config.max_tokens}")
    if messages is not None and len(messages) > config.max_messages:
        problems.append(f"{len(messages)} messages exceed the limit of {config.max_messages}")
    if problems:
        raise HTTPException(status_code=400, detail="; ".join(problems))


def secure(app: FastAPI, config: SecurityConfig) -> None:
    """Guard ``app`` (see the module doc): middleware, error handlers, log redaction."""
    register_key_ring(config.key_ring)
    app.state.security = config
    app.add_middleware(GatewayGuard, config=config)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    install_log_redaction()


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        error_body(exc.status_code, redact(str(exc.detail))),
        status_code=exc.status_code,
        headers=dict(exc.headers or {}),
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each bad field and why, never echoing the input (it may hold secrets)."""
    assert isinstance(exc, RequestValidationError)
    parts = []
    for err in exc.errors()[:10]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return JSONResponse(error_body(422, redact("; ".join(parts))), status_code=422)
