"""``secure``: the guard middleware and OpenAI-shaped, redacted error handlers on an app."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tentalis.gateway.security.config import SecurityConfig
from tentalis.gateway.security.guard import GatewayGuard, error_body
from tentalis.gateway.security.redaction import install_log_redaction, redact, register_key_ring


def app_security(request: Request) -> SecurityConfig:
    """The config :func:`secure` put on the app (defaults when the app is not secured);
    a route dependency."""
    return getattr(request.app.state, "security", None) or SecurityConfig()


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
