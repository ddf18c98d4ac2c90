"""The proxy's routes; their state comes through :func:`proxy_state` (override it to
mount the router alone)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from tentalis.gateway.openai.shapes import (
    ERROR_RESPONSES,
    SSE_EVENT_SCHEMA,
    ChatCompletionRequest,
    CompletionRequest,
    ErrorResponse,
    ModelList,
    OpenAIResponse,
)
from tentalis.gateway.proxy.forward import forward, simple_get
from tentalis.gateway.proxy.state import ProxyState
from tentalis.gateway.proxy.upstream import error_response
from tentalis.gateway.security import SecurityConfig, check_caps
from tentalis.gateway.security.handlers import app_security

_COMPLETION_DOC = {"model": OpenAIResponse, "description": "The backend's completion, or "
                   "its stream of chunks when `stream` is true",
                   "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}}}


def proxy_state(request: Request) -> ProxyState:
    """The app's :class:`ProxyState` (``app.state.proxy``)."""
    return request.app.state.proxy  # type: ignore[no-any-return]


State = Annotated[ProxyState, Depends(proxy_state)]
Security = Annotated[SecurityConfig, Depends(app_security)]

router = APIRouter()


@router.get("/health", tags=["health"])
async def health(state: State) -> dict[str, Any]:
    """Liveness and the publisher's counters (no key needed)."""
    publisher = state.publisher
    s = publisher.stats
    return {"status": "ok", "bus": "ok" if publisher.healthy else "spooling",
            "submitted": s.submitted, "published": s.published, "spooled": s.spooled,
            "replayed": s.replayed}


@router.get("/v1/models", response_model=ModelList, responses=ERROR_RESPONSES)
async def models(state: State) -> Response:
    """The backend's model list."""
    return await simple_get(state, "/v1/models")


@router.get("/v1/models/{model_id:path}", response_model=None, responses={
    **ERROR_RESPONSES, 404: {"model": ErrorResponse, "description": "No such model"}})
async def model(model_id: str, state: State) -> Response:
    """The backend's card of one model (its 404 passes through)."""
    if not model_id.strip() or not model_id.isprintable():
        return error_response(404, f"no model named {model_id!r}")
    return await simple_get(state, f"/v1/models/{quote(model_id, safe='@')}")


@router.post("/v1/chat/completions", response_model=None,
             responses={200: _COMPLETION_DOC, **ERROR_RESPONSES})
async def chat(body: ChatCompletionRequest, request: Request, state: State,
               security: Security) -> Response:
    """Chat completion, streamed (SSE) or not, forwarded to the configured backend."""
    payload = body.model_dump(exclude_unset=True)
    rejected = _over_caps(body.n, body.max_completion_tokens or body.max_tokens, body.messages,
                          security)
    return await forward(state, request, "/v1/chat/completions", payload, payload["messages"],
                         rejected)


@router.post("/v1/completions", response_model=None,
             responses={200: _COMPLETION_DOC, **ERROR_RESPONSES})
async def completions(body: CompletionRequest, request: Request, state: State,
                      security: Security) -> Response:
    """Text completion, streamed (SSE) or not, forwarded to the configured backend."""
    payload = body.model_dump(exclude_unset=True)
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    rejected = _over_caps(body.n, body.max_tokens, prompts, security)
    messages = [{"role": "user", "content": p} for p in prompts]
    return await forward(state, request, "/v1/completions", payload, messages, rejected)


def _over_caps(n: int | None, max_tokens: int | None, messages: list[Any],
               security: SecurityConfig) -> str | None:
    """Why the call is over the caps (it is then recorded as a failed turn), or None."""
    try:
        check_caps(n, max_tokens, messages, security)
    except HTTPException as exc:
        return str(exc.detail)
    return None
