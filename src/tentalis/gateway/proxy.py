"""The intercept proxy: an OpenAI-compatible front that turns every call into training data.

Clients point their OpenAI base URL here; each call is forwarded to the one backend named
in the configuration (``INTERCEPT_BACKEND_URL``; nothing in a request can change it) and
answered with the backend's bytes, streamed as they arrive. After the answer has gone
out, the call becomes a :class:`~tentalis.events.SessionEvent` (one per choice) handed to
the :class:`EventPublisher`, which publishes it off the request path. Sessions, turn types
and next-state links: see :mod:`tentalis.gateway.sessions`.

What is recorded passes through :func:`redact`: API keys, bearer tokens and ``key=``
parameters are masked in messages and completions too. The prompt is otherwise recorded as
sent: it is the user's content and the training data. The backend receives it unchanged.

Backend failures become OpenAI-shaped errors: unreachable → 502, too slow → 504, a 5xx or
a refused proxy credential → 502, any other 4xx passes through with its message. The call
is still recorded (``trainable=False``, ``finish_reason="error:<why>"``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from tentalis.events import SessionEvent, derived_id
from tentalis.gateway.openai_shapes import (
    ERROR_RESPONSES,
    REDIRECT_FIELDS,
    SSE_EVENT_SCHEMA,
    ChatCompletionRequest,
    CompletionRequest,
    ModelList,
    OpenAIResponse,
)
from tentalis.gateway.proxy_config import ProxyConfig
from tentalis.gateway.publisher import EventPublisher
from tentalis.gateway.redaction import redact_value
from tentalis.gateway.security import (
    SecurityConfig,
    check_caps,
    redact,
    register_secret,
    secure,
)
from tentalis.gateway.sessions import (
    SESSION_HEADER,
    TASK_HEADER,
    TURN_TYPE_HEADER,
    SessionFile,
    SessionHeaderError,
    SessionTracker,
    Turn,
)
from tentalis.gateway.upstream import (
    Answer,
    Choice,
    error_response,
    parse_response,
    parse_stream,
    sse_error,
    upstream_error_message,
)

_COMPLETION_DOC = {"model": OpenAIResponse, "description": "The backend's completion, or "
                   "its stream of chunks when `stream` is true",
                   "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}}}


class ProxyState:
    """The proxy's parts: backend client, session tracker, publisher."""

    def __init__(
        self, config: ProxyConfig, publisher: EventPublisher, client: httpx.AsyncClient | None
    ) -> None:
        self.config = config
        self.publisher = publisher
        self.tracker = SessionTracker(config.max_sessions, scrub=redact_value,
                                      file=SessionFile(config.sessions_file))
        self.client = client
        self._owns_client = client is None

    async def start(self) -> None:
        if self.client is None:
            limits = httpx.Limits(max_connections=self.config.max_connections,
                                  max_keepalive_connections=self.config.max_connections)
            self.client = httpx.AsyncClient(base_url=self.config.root, limits=limits,
                                            timeout=httpx.Timeout(self.config.timeout_s))
        await self.publisher.start()

    async def close(self) -> None:
        await self.publisher.close()
        if self.tracker.file is not None:
            self.tracker.file.close()
        if self._owns_client and self.client is not None:
            await self.client.aclose()
            self.client = None

    def record(self, turn: Turn, messages: list[Any], model: str, answer: Answer,
               latency_s: float, error: str | None) -> None:
        """Hand the call's SessionEvents (one per choice) to the publisher."""
        choices = sorted(answer.choices.values(), key=lambda c: c.index) or [Choice()]
        scrubbed = redact_value(messages)
        for c in choices:
            self.publisher.submit(SessionEvent(
                event_id=turn.event_id if c.index == 0 else derived_id(turn.event_id, str(c.index)),
                session_id=turn.session_id, task_id=turn.task_id, turn_index=turn.turn_index,
                trainable=turn.trainable and error is None, messages=scrubbed,
                completion=redact(c.completion), prompt_token_ids=answer.prompt_token_ids,
                completion_token_ids=c.token_ids, logprobs=c.logprobs,
                finish_reason=f"error:{error}" if error else c.finish_reason or "incomplete",
                latency_s=latency_s, model=answer.model or model, adapter=answer.adapter,
                source=self.config.source,
            ))  # fmt: skip


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

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, Any]:
        """Liveness and the publisher's counters (no key needed)."""
        s = publisher.stats
        return {"status": "ok", "bus": "ok" if publisher.healthy else "spooling",
                "submitted": s.submitted, "published": s.published, "spooled": s.spooled,
                "replayed": s.replayed}

    @app.get("/v1/models", response_model=ModelList, responses=ERROR_RESPONSES)
    async def models() -> Response:
        """The backend's model list."""
        return await _simple_get(state, "/v1/models")

    @app.post("/v1/chat/completions", response_model=None,
              responses={200: _COMPLETION_DOC, **ERROR_RESPONSES})
    async def chat(body: ChatCompletionRequest, request: Request) -> Response:
        """Chat completion, streamed (SSE) or not, forwarded to the configured backend."""
        payload = body.model_dump(exclude_unset=True)
        check_caps(body.n, body.max_completion_tokens or body.max_tokens, body.messages,
                   _security(request))
        return await _forward(state, request, "/v1/chat/completions", payload,
                              payload["messages"])

    @app.post("/v1/completions", response_model=None,
              responses={200: _COMPLETION_DOC, **ERROR_RESPONSES})
    async def completions(body: CompletionRequest, request: Request) -> Response:
        """Text completion, streamed (SSE) or not, forwarded to the configured backend."""
        payload = body.model_dump(exclude_unset=True)
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        check_caps(body.n, body.max_tokens, prompts, _security(request))
        messages = [{"role": "user", "content": p} for p in prompts]
        return await _forward(state, request, "/v1/completions", payload, messages)

    return app


def _security(request: Request) -> SecurityConfig:
    return getattr(request.app.state, "security", None) or SecurityConfig()


async def _simple_get(state: ProxyState, path: str) -> Response:
    assert state.client is not None
    try:
        resp = await state.client.get(path, headers=state.config.upstream_headers())
    except httpx.TimeoutException:
        return error_response(504, "the backend did not answer in time")
    except httpx.HTTPError as exc:
        return error_response(502, f"the backend could not be reached ({type(exc).__name__})")
    if resp.status_code >= 400:
        return _backend_error(resp.status_code, resp.content)
    return Response(resp.content, resp.status_code, media_type="application/json")


def _backend_error(status: int, body: bytes) -> Response:
    message = redact(upstream_error_message(body)) or f"HTTP {status}"
    if status in (401, 403):
        return error_response(502, "the backend refused the proxy's credentials "
                                   "(INTERCEPT_BACKEND_API_KEY)")
    return error_response(status if status < 500 else 502, f"backend: {message}")


async def _forward(state: ProxyState, request: Request, path: str, payload: dict[str, Any],
                   messages: list[Any]) -> Response:
    redirect = REDIRECT_FIELDS & payload.keys()
    if redirect:
        return error_response(400, f"{sorted(redirect)[0]!r} is not accepted: the backend is "
                                   "set by the proxy's configuration only")
    headers = request.headers
    try:
        turn = state.tracker.begin(messages, session_id=headers.get(SESSION_HEADER),
                                   turn_type=headers.get(TURN_TYPE_HEADER),
                                   task_id=headers.get(TASK_HEADER), source=state.config.source)
    except SessionHeaderError as exc:
        return error_response(400, str(exc))
    if turn.link is not None:
        state.publisher.submit(turn.link)
    if state.client is None:  # served without a lifespan (in-process test clients)
        await state.start()
    assert state.client is not None
    model = str(payload.get("model", ""))
    record = lambda answer, error: state.record(  # noqa: E731
        turn, messages, model, answer, time.perf_counter() - t0, error)
    t0 = time.perf_counter()
    upstream = state.client.build_request("POST", path, json=payload,
                                          headers=state.config.upstream_headers())
    try:
        resp = await state.client.send(upstream, stream=bool(payload.get("stream")))
    except httpx.TimeoutException:
        record(Answer(), "timeout")
        return error_response(504, f"the backend did not answer within "
                                   f"{state.config.timeout_s:g} s")
    except httpx.HTTPError as exc:
        record(Answer(), "unreachable")
        return error_response(502, f"the backend could not be reached ({type(exc).__name__})")
    if resp.status_code >= 400:
        body = await resp.aread()
        await resp.aclose()
        record(Answer(), str(resp.status_code))
        return _backend_error(resp.status_code, body)
    if not payload.get("stream"):
        return Response(resp.content, resp.status_code, media_type="application/json",
                        background=BackgroundTask(lambda: record(parse_response(resp.content),
                                                                 None)))
    return StreamingResponse(_relay(resp, record),
                             media_type=resp.headers.get("content-type", "text/event-stream"))


async def _relay(resp: httpx.Response, record: Any) -> AsyncIterator[bytes]:
    """Pass the backend's stream through chunk by chunk; record it when it ends."""
    chunks: list[bytes] = []
    error = None
    try:
        async for chunk in resp.aiter_raw():
            chunks.append(chunk)
            yield chunk
    except httpx.HTTPError as exc:
        error = "stream_broken"
        yield sse_error(502, f"the backend stream broke ({type(exc).__name__})")
    finally:
        record(parse_stream(b"".join(chunks)), error)
        with contextlib.suppress(Exception):
            await resp.aclose()
