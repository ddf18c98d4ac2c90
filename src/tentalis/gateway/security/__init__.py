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

from tentalis.gateway.security.config import SecurityConfig, check_bind, check_caps, is_loopback
from tentalis.gateway.security.guard import GatewayGuard, error_body
from tentalis.gateway.security.handlers import secure
from tentalis.gateway.security.keys import KeyRing, add_key, generate_key, hash_key
from tentalis.gateway.security.redaction import (
    RedactingFilter,
    install_log_redaction,
    redact,
    register_secret,
)

__all__ = [
    "GatewayGuard",
    "KeyRing",
    "RedactingFilter",
    "SecurityConfig",
    "add_key",
    "check_bind",
    "check_caps",
    "error_body",
    "generate_key",
    "hash_key",
    "install_log_redaction",
    "is_loopback",
    "redact",
    "register_secret",
    "secure",
]
