"""Gateway fixtures: real uvicorn servers on free loopback ports, an instant backend, a
recorder writing the bus into a real SQLite store."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from tentalis.bus.base import Bus
from tentalis.bus.memory import MemoryBus
from tentalis.errors import BusError
from tentalis.events import Event
from tentalis.store import ExperienceStore
from tentalis.store.recorder import Recorder

KEY = "tnt-gateway-test-key-0123456789abcdefghij"


@contextlib.asynccontextmanager
async def serve_app(app: Any, log_level: str = "warning") -> AsyncIterator[str]:
    """Run ``app`` under uvicorn on 127.0.0.1:<free port>; yield its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level=log_level, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def instant_backend() -> FastAPI:
    """An OpenAI-compatible backend that answers at once (echoes the last message).

    It returns token ids and logprobs the way vLLM and tentalis' model server do, streams
    when asked, and fails on demand: model ``fail-500`` → 500, ``fail-400`` → 400.
    It records the headers and bodies it received in ``app.state.seen``.
    """
    app = FastAPI()
    app.state.seen = []

    def answer(body: dict[str, Any]) -> str:
        if "messages" in body:
            last = body["messages"][-1].get("content")
            return f"echo: {last}"
        return f"echo: {body.get('prompt')}"

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": "tiny", "object": "model"}]}

    async def complete(request: Request, kind: str) -> Any:
        body = await request.json()
        app.state.seen.append({"headers": dict(request.headers), "body": body})
        if body.get("model") == "fail-500":
            return JSONResponse({"error": {"message": "boom", "type": "server_error"}}, 500)
        if body.get("model") == "fail-400":
            return JSONResponse({"error": {"message": "bad model", "type": "x"}}, 400)
        text = answer(body)
        words = text.split(" ")
        ids = list(range(1, len(words) + 1))
        lps = [-0.5] * len(words)
        if not body.get("stream"):
            n = body.get("n") or 1
            choices = []
            for i in range(n):
                c: dict[str, Any] = {"index": i, "finish_reason": "stop", "token_ids": ids,
                                     "logprobs": {"content": [{"token": w, "logprob": lp}
                                                              for w, lp in zip(words, lps,
                                                                               strict=True)]}}
                if kind == "chat":
                    c["message"] = {"role": "assistant", "content": text}
                else:
                    c["text"] = text
                choices.append(c)
            return {"id": "x", "object": kind, "model": body["model"], "choices": choices,
                    "prompt_token_ids": [7, 8, 9],
                    "usage": {"prompt_tokens": 3, "completion_tokens": len(words),
                              "total_tokens": 3 + len(words)}}

        async def events() -> AsyncIterator[bytes]:
            for i, w in enumerate(words):
                piece = w if i == 0 else " " + w
                delta = {"delta": {"content": piece}} if kind == "chat" else {"text": piece}
                chunk = {"id": "x", "object": f"{kind}.chunk", "model": body["model"],
                         "choices": [{"index": 0, **delta, "finish_reason": None,
                                      "token_ids": [ids[i]],
                                      "logprobs": {"content": [{"token": w, "logprob": -0.5}]}}]}
                yield f"data: {json.dumps(chunk)}\n\n".encode()
            end = {"id": "x", "object": f"{kind}.chunk", "model": body["model"],
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            yield f"data: {json.dumps(end)}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        return await complete(request, "chat")

    @app.post("/v1/completions")
    async def completions(request: Request) -> Any:
        return await complete(request, "text_completion")

    return app


class FlakyBus(MemoryBus):
    """A MemoryBus that can be taken down: publishing fails while ``down`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.attempts = 0

    async def publish(self, event: Event) -> bool:
        self.attempts += 1
        if self.down:
            raise BusError("bus is down (test)")
        return await super().publish(event)


@pytest.fixture
async def flaky_bus() -> AsyncIterator[FlakyBus]:
    bus = FlakyBus()
    await bus.connect()
    yield bus
    await bus.close()


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(logging.Formatter().format(r) for r in caplog.records)


@pytest.fixture
def serve():  # type: ignore[no-untyped-def]
    """``async with serve(app) as url``: the app on a real uvicorn server."""
    return serve_app


@pytest.fixture
def backend_app() -> FastAPI:
    """A fresh instant OpenAI-compatible backend app (see :func:`instant_backend`)."""
    return instant_backend()


@pytest.fixture
def spool_path(tmp_path: Path) -> Path:
    return tmp_path / "spool" / "proxy.jsonl"


@contextlib.asynccontextmanager
async def recording(bus: Bus, store: ExperienceStore) -> AsyncIterator[Recorder]:
    """The Recorder service over ``bus`` → ``store`` while the block runs."""
    rec = Recorder(store, batch=64)

    async def run() -> None:
        async for batch in bus.consume(rec.spec):
            await rec.handle_batch(batch)
            for d in batch:
                await d.ack()

    task = asyncio.create_task(run())
    try:
        yield rec
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    """Poll ``predicate()`` until true (AssertionError after ``timeout`` seconds)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = ExperienceStore(tmp_path / "experience.db")
    yield s
    s.close()


@pytest.fixture
def gw():  # type: ignore[no-untyped-def]
    """Helpers for gateway tests: ``gw.recording``, ``gw.wait_for``, ``gw.KEY``."""
    import types

    return types.SimpleNamespace(recording=recording, wait_for=wait_for, KEY=KEY,
                                 log_text=log_text)


@pytest.fixture(scope="module")
def tiny_llm(tiny_model_dir: Path) -> Iterator[Any]:
    """The tiny model served in-process, one engine per test module (the proxy tests put it
    behind a real model server; modelserver/ and proxy/test_streaming.py want a fresh one
    per test and override this)."""
    from tentalis.inference.local import LocalInference  # torch only where a test needs it

    client = LocalInference(tiny_model_dir, device="cpu", max_batch=8, model_name="tiny")
    yield client
    client._batcher.close()
