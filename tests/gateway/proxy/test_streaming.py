"""Through the intercept proxy in front of the model server (tiny model): chunks are
relayed as they are decoded, the streamed call is still recorded whole, and
``GET /v1/models/{id}`` reaches the backend."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tentalis.bus.memory import MemoryBus
from tentalis.gateway.modelserver import create_model_app
from tentalis.gateway.proxy import create_proxy_app
from tentalis.gateway.proxy.config import ProxyConfig
from tentalis.gateway.publisher import EventPublisher
from tentalis.gateway.security import SecurityConfig
from tentalis.gateway.spool import Spool
from tentalis.inference.adapters import AdapterStore
from tentalis.inference.local import LocalInference


@pytest.fixture
def tiny_llm(tiny_model_dir: Path) -> Iterator[LocalInference]:
    client = LocalInference(tiny_model_dir, device="cpu", max_batch=8, model_name="tiny")
    yield client
    client._batcher.close()


async def test_streamed_chunks_pass_the_proxy_as_they_are_decoded(
    serve, tiny_llm, tmp_path, gw  # type: ignore[no-untyped-def]
) -> None:
    bus = MemoryBus()
    await bus.connect()
    got: list = []
    await bus.listen(["tentalis.ev.session"], lambda e: _append(got, e))
    first_chunk = threading.Event()
    steps: list[float] = []

    def hook(rows: int) -> None:
        steps.append(time.monotonic())
        if len(steps) == 2:  # the first token has passed the proxy by now
            first_chunk.wait(10)

    model_app = create_model_app(tiny_llm, AdapterStore(tmp_path / "adapters"),
                                 SecurityConfig.with_keys(gw.KEY, rate_limit_per_minute=0))
    async with serve(model_app) as backend:
        config = ProxyConfig(backend_url=backend + "/v1", backend_api_key=gw.KEY,
                             spool_path=tmp_path / "spool.jsonl")
        publisher = EventPublisher(bus, Spool(config.spool_path), retry_interval=0.05)
        async with serve(create_proxy_app(config, publisher)) as url:
            client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
            tiny_llm.step_hook = hook
            arrivals: list[float] = []
            text = ""
            stream = await client.chat.completions.create(
                model="base", messages=[{"role": "user", "content": "def add(a, b):"}],
                max_tokens=16, temperature=0, stream=True)  # ids and logprobs: the proxy asks
            async for chunk in stream:
                arrivals.append(time.monotonic())
                first_chunk.set()
                text += "".join(c.delta.content or "" for c in chunk.choices)
            tiny_llm.step_hook = None
            assert len(steps) >= 3 and arrivals[0] < steps[-1]

            assert (await client.models.retrieve("base")).id == "base"
            with pytest.raises(openai.NotFoundError, match="not served"):
                await client.models.retrieve("nope")
            await publisher.flush()
    (event,) = got
    assert event.completion == text and event.trainable
    assert event.completion_token_ids and event.prompt_token_ids
    assert len(event.logprobs) == len(event.completion_token_ids) == len(steps)


async def _append(into: list, event) -> None:  # type: ignore[no-untyped-def]
    into.append(event)


async def test_a_client_that_leaves_the_proxy_frees_its_row_on_the_model_server(
    serve, tiny_llm, tmp_path, gw, wait_for  # type: ignore[no-untyped-def]
) -> None:
    import httpx

    bus = MemoryBus()
    await bus.connect()
    got: list = []
    await bus.listen(["tentalis.ev.session"], lambda e: _append(got, e))
    steps: list[int] = []
    tiny_llm.step_hook = lambda rows: (steps.append(rows), time.sleep(0.005))
    model_app = create_model_app(tiny_llm, AdapterStore(tmp_path / "adapters"),
                                 SecurityConfig.with_keys(gw.KEY, rate_limit_per_minute=0))
    async with serve(model_app) as backend:
        config = ProxyConfig(backend_url=backend + "/v1", backend_api_key=gw.KEY,
                             spool_path=tmp_path / "spool.jsonl")
        publisher = EventPublisher(bus, Spool(config.spool_path), retry_interval=0.05)
        async with serve(create_proxy_app(config, publisher)) as url:
            body = {"model": "base", "max_tokens": 1500, "temperature": 0, "stream": True,
                    "messages": [{"role": "user", "content": "def add(a, b):"}]}
            async with httpx.AsyncClient(base_url=url, timeout=10) as http, \
                    http.stream("POST", "/v1/chat/completions", json=body) as resp:
                assert resp.status_code == 200
                await anext(resp.aiter_lines())
            await wait_for(lambda: tiny_llm.cancelled_rows == 1, what="the row freed")
            await publisher.flush()
    assert steps[-1] == 0 and len(steps) < 400
    (event,) = got  # recorded as a failed turn: a partial answer is not trained on
    assert event.finish_reason == "error:client_disconnected" and not event.trainable
    assert event.completion  # what had been sent
