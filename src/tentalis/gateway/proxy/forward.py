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
    TURN_TYPE_HEADER,
    SessionHeaderError,
)
from tentalis.gateway.proxy.state import ProxyState
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


async def forward(state: ProxyState, request: Request, path: str, payload: dict[str, Any],
                  messages: list[Any]) -> Response:
    """Send the call to the backend and answer with what it says (module doc)."""
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
    """Pass the backend's stream through chunk by chunk as it arrives; record it when it
    ends (a client that leaves early: a failed turn, and closing the backend's stream
    ends its generation there)."""
    chunks: list[bytes] = []
    error = None
    try:
        async for chunk in resp.aiter_raw():
            chunks.append(chunk)
            yield chunk
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
