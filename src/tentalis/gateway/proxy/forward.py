"""Forwarding a call to the backend: its answer relayed as it arrives, the call recorded
after it (see :mod:`tentalis.gateway.proxy`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from tentalis.gateway.openai.shapes import REDIRECT_FIELDS
from tentalis.gateway.proxy.sessions import (
    SESSION_HEADER,
    TASK_HEADER,
    TURN_TYPE_HEADERS,
    SessionHeaderError,
    Turn,
)
from tentalis.gateway.proxy.state import ProxyState
from tentalis.gateway.proxy.training import (
    StreamStripper,
    TrainingAsk,
    ask_for_training_data,
    strip_body,
)
from tentalis.gateway.proxy.upstream import (
    Answer,
    error_response,
    parse_response,
    parse_stream,
    sse_error,
    upstream_error_message,
)
from tentalis.gateway.security import redact


async def simple_get(state: ProxyState, path: str) -> Response:
    """The backend's answer to ``GET path``, or an OpenAI-shaped error."""
    assert state.client is not None
    try:
        resp = await state.client.get(path, headers=state.config.upstream_headers())
    except httpx.TimeoutException:
        return error_response(504, "the backend did not answer in time")
    except httpx.HTTPError as exc:
        return error_response(502, f"the backend could not be reached ({type(exc).__name__})")
    if resp.status_code >= 400:
        return _backend_error(resp.status_code, resp.content)
    if resp.status_code >= 300:  # never relay a redirect: the backend is configured, not found
        return error_response(502, f"the backend answered HTTP {resp.status_code}")
    return Response(resp.content, resp.status_code, media_type="application/json")


def _backend_error(status: int, body: bytes) -> Response:
    message = redact(upstream_error_message(body)) or f"HTTP {status}"
    if status in (401, 403):
        return error_response(502, "the backend refused the proxy's credentials "
                                   "(INTERCEPT_BACKEND_API_KEY)")
    return error_response(status if status < 500 else 502, f"backend: {message}")


def _placed(state: ProxyState, headers: Any, messages: list[Any]) -> tuple[Turn, str | None]:
    """The call's turn, and the header problem that refuses it (it is then placed by its
    messages alone)."""
    kind = next((headers[h] for h in TURN_TYPE_HEADERS if h in headers), None)
    try:
        return state.tracker.begin(messages, session_id=headers.get(SESSION_HEADER),
                                   turn_type=kind, task_id=headers.get(TASK_HEADER),
                                   source=state.config.source), None
    except SessionHeaderError as exc:
        return state.tracker.begin(messages, source=state.config.source), str(exc)


async def forward(state: ProxyState, request: Request, path: str, payload: dict[str, Any],
                  messages: list[Any], rejected: str | None = None) -> Response:
    """Send the call to the backend and answer with what it says (module doc). A call the
    proxy refuses (``rejected``: over a cap; a redirect field; a bad session header) is
    recorded as a failed turn and answered 400. Every answer names the session in
    ``X-Session-Id``."""
    turn, problem = _placed(state, request.headers, messages)
    response = await _answer(state, turn, path, payload, messages, rejected or problem)
    response.headers["X-Session-Id"] = turn.session_id
    return response


async def _answer(state: ProxyState, turn: Turn, path: str, payload: dict[str, Any],
                  messages: list[Any], rejected: str | None) -> Response:
    model = str(payload.get("model", ""))
    t0 = time.perf_counter()
    record = lambda answer, error: state.record(  # noqa: E731
        turn, messages, model, answer, time.perf_counter() - t0, error)
    redirect = REDIRECT_FIELDS & payload.keys()
    if redirect and rejected is None:
        rejected = (f"{sorted(redirect)[0]!r} is not accepted: the backend is set by the "
                    "proxy's configuration only")
    if rejected is not None:
        record(Answer(), "rejected")
        return error_response(400, redact(rejected))
    if state.client is None:  # served without a lifespan (in-process test clients)
        await state.start()
    assert state.client is not None
    ask = TrainingAsk()
    sent = payload
    if turn.trainable and state.config.training_data:
        sent, ask = ask_for_training_data(payload, chat=path.endswith("/chat/completions"))
    stream = bool(payload.get("stream"))
    try:
        resp = await _send(state, path, sent, stream)
        if resp.status_code in (400, 422) and ask.added:
            body = await resp.aread()
            await resp.aclose()
            if ask.refused_by(upstream_error_message(body)):  # it refuses the extension
                ask = TrainingAsk()
                resp = await _send(state, path, payload, stream)
            else:
                resp = httpx.Response(resp.status_code, content=body)
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
    if not stream:
        return Response(strip_body(resp.content, ask), resp.status_code,
                        media_type="application/json",
                        background=BackgroundTask(lambda: record(parse_response(resp.content),
                                                                 None)))
    return StreamingResponse(_relay(resp, record, StreamStripper(ask)),
                             media_type=resp.headers.get("content-type", "text/event-stream"))


async def _send(state: ProxyState, path: str, payload: dict[str, Any], stream: bool
                ) -> httpx.Response:
    assert state.client is not None
    upstream = state.client.build_request("POST", path, json=payload,
                                          headers=state.config.upstream_headers())
    return await state.client.send(upstream, stream=stream)


async def _relay(resp: httpx.Response, record: Any, strip: StreamStripper
                 ) -> AsyncIterator[bytes]:
    """Pass the backend's stream through chunk by chunk as it arrives (less the fields the
    client did not ask for); record the whole of it when it ends (a client that leaves
    early: a failed turn, and closing the backend's stream ends its generation there)."""
    chunks: list[bytes] = []
    error = None
    try:
        async for chunk in resp.aiter_raw():
            chunks.append(chunk)
            out = strip.feed(chunk)
            if out:
                yield out
        rest = strip.flush()
        if rest:
            yield rest
    except httpx.HTTPError as exc:
        error = "stream_broken"
        yield sse_error(502, f"the backend stream broke ({type(exc).__name__})")
    except (asyncio.CancelledError, GeneratorExit):  # the client left: a partial answer
        error = "client_disconnected"
        raise
    finally:
        record(parse_stream(b"".join(chunks)), error)
        with contextlib.suppress(Exception):
            await resp.aclose()
