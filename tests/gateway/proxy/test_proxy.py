"""The intercept proxy with the official ``openai`` client, in front of tentalis' model
server running the tiny model; every call lands in a real SQLite store via the Recorder."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

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
from tentalis.store.sessions import session_view


@contextlib.asynccontextmanager
async def proxied(serve: Any, backend: Any, bus: Any, tmp: Path, key: str | None = None,
                  security: SecurityConfig | None = None) -> AsyncIterator[tuple[str, Any]]:
    async with serve(backend) as backend_url:
        config = ProxyConfig(backend_url=backend_url + "/v1", backend_api_key=key,
                             spool_path=tmp / "spool.jsonl")
        publisher = EventPublisher(bus, Spool(config.spool_path), retry_interval=0.05)
        app = create_proxy_app(config, publisher, security)
        async with serve(app) as url:
            yield url, publisher


async def test_three_turns_streaming_and_not_are_recorded_with_next_state_links(
    serve, tiny_llm, tmp_path, store, gw
) -> None:
    bus = MemoryBus()
    await bus.connect()
    model_app = create_model_app(tiny_llm, AdapterStore(tmp_path / "adapters"),
                                 SecurityConfig.with_keys(gw.KEY, rate_limit_per_minute=0))
    async with gw.recording(bus, store), proxied(serve, model_app, bus, tmp_path,
                                                  key=gw.KEY) as (url, publisher):
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        session = {"X-Session-Id": "conv-42"}
        messages: list[dict[str, Any]] = [{"role": "user", "content": "Say hello"}]
        first = await client.chat.completions.create(
            model="base", messages=messages, max_tokens=6, temperature=0, logprobs=True,
            extra_body={"return_token_ids": True}, extra_headers=session)
        text1 = first.choices[0].message.content
        messages += [{"role": "assistant", "content": text1},
                     {"role": "user", "content": "Again, louder"}]
        stream = await client.chat.completions.create(
            model="base", messages=messages, max_tokens=6, temperature=0, stream=True,
            extra_headers=session)
        text2 = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        messages += [{"role": "assistant", "content": text2},
                     {"role": "tool", "content": "error: tool timed out", "tool_call_id": "t1"}]
        third = await client.chat.completions.create(
            model="base", messages=messages, max_tokens=4, temperature=0, extra_headers=session)
        # a side call in the same session: recorded, not trainable, not in the chain
        await client.chat.completions.create(
            model="base", messages=[{"role": "user", "content": "Title?"}], max_tokens=2,
            extra_headers={**session, "X-Turn-Type": "side"})
        await gw.wait_for(lambda: store.counts()["session"] == 4
                          and store.counts()["session_link"] == 2)
    view = session_view(store, "conv-42")
    assert view is not None
    main = [t for t in view.turns if t.trainable]
    assert [t.turn_index for t in main] == [0, 1, 2]
    assert [t.completion for t in main] == [text1, text2, third.choices[0].message.content]
    assert main[0].next_state == {"kind": "user",
                                  "messages": [{"role": "user", "content": "Again, louder"}]}
    assert main[1].next_state is not None and main[1].next_state["kind"] == "tool"
    assert main[1].next_state["messages"][0]["content"] == "error: tool timed out"
    assert main[2].next_state is None  # nothing followed it yet
    t0 = main[0]
    assert t0.completion_token_ids and t0.logprobs and t0.prompt_token_ids
    assert len(t0.logprobs) == len(t0.completion_token_ids)
    assert t0.model == "base" and t0.latency_s > 0 and t0.messages[0]["content"] == "Say hello"
    assert main[1].finish_reason in ("stop", "length")
    side = [t for t in view.turns if not t.trainable]
    assert len(side) == 1 and side[0].next_state is None
    assert publisher.stats.spooled == 0 and publisher.stats.published == 6


async def test_completions_models_and_n_choices(serve, backend_app, tmp_path, gw) -> None:
    bus = MemoryBus()
    await bus.connect()
    async with proxied(serve, backend_app, bus, tmp_path) as (url, publisher):
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        assert [m.id for m in (await client.models.list()).data] == ["tiny"]
        done = await client.completions.create(model="tiny", prompt="one two", max_tokens=3)
        assert done.choices[0].text == "echo: one two"
        chunks = [c async for c in await client.completions.create(
            model="tiny", prompt="three", max_tokens=3, stream=True)]
        assert "".join(c.choices[0].text or "" for c in chunks if c.choices) == "echo: three"
        two = await client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "hi"}], n=2)
        assert len(two.choices) == 2
        await publisher.flush()
    events = [e for e in (await bus.info()).subjects.items()]
    assert events == [("tentalis.ev.session", 4)]  # 1 + 1 + 2 choices


@pytest.mark.parametrize(
    ("model", "status", "fragment"),
    [("fail-500", 502, "backend: boom"), ("fail-400", 400, "backend: bad model")],
)
async def test_backend_errors_are_openai_errors_and_recorded(
    serve, backend_app, tmp_path, model, status, fragment
) -> None:
    bus = MemoryBus()
    await bus.connect()
    got: list[Any] = []
    await bus.listen(["tentalis.ev.>"], lambda e: _append(got, e))
    async with proxied(serve, backend_app, bus, tmp_path) as (url, publisher):
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.APIStatusError) as err:
            await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}])
        assert err.value.status_code == status and fragment in err.value.message
        # the proxy keeps serving
        ok = await client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "hi"}])
        assert ok.choices[0].message.content == "echo: hi"
        await publisher.flush()
    failed = [e for e in got if e.finish_reason and e.finish_reason.startswith("error")]
    assert len(failed) == 1 and not failed[0].trainable


async def test_unreachable_backend_is_a_502_and_bad_headers_a_400(serve, tmp_path) -> None:
    bus = MemoryBus()
    await bus.connect()
    config = ProxyConfig(backend_url="http://127.0.0.1:9/v1", spool_path=tmp_path / "s.jsonl",
                         timeout_s=2)
    app = create_proxy_app(config, EventPublisher(bus, Spool(config.spool_path)))
    async with serve(app) as url:
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.APIStatusError) as err:
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}])
        assert err.value.status_code == 502 and "could not be reached" in err.value.message
        with pytest.raises(openai.BadRequestError, match="X-Turn-Type"):
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}],
                extra_headers={"X-Turn-Type": "sideways"})
        with pytest.raises(openai.BadRequestError, match="X-Session-Id"):
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}],
                extra_headers={"X-Session-Id": "../../etc/passwd"})


async def _append(into: list[Any], event: Any) -> None:
    if event.kind == "session":
        into.append(event)


async def test_a_restarted_proxy_links_the_next_turn_to_the_last_one_before_it(
    serve, backend_app, tmp_path
) -> None:
    """Two turns, a new proxy app over the same files, a third turn: the third links to
    the second (the session's turn counter and last main turn survived the restart)."""
    bus = MemoryBus()
    await bus.connect()
    links: list[Any] = []

    async def on_link(event: Any) -> None:
        if event.kind == "session_link":
            links.append(event)

    await bus.listen(["tentalis.ev.>"], on_link)
    seen: list[Any] = []
    await bus.listen(["tentalis.ev.>"], lambda e: _append(seen, e))
    session = {"X-Session-Id": "conv-restart"}
    messages: list[dict[str, Any]] = [{"role": "user", "content": "one"}]
    async with proxied(serve, backend_app, bus, tmp_path) as (url, publisher):
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        for text in ("two", "three"):
            done = await client.chat.completions.create(
                model="m", messages=messages, extra_headers=session)
            messages += [{"role": "assistant", "content": done.choices[0].message.content},
                         {"role": "user", "content": text}]
        await publisher.flush()
    async with proxied(serve, backend_app, bus, tmp_path) as (url, publisher):
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        await client.chat.completions.create(model="m", messages=messages,
                                             extra_headers=session)
        await publisher.flush()
    turns = sorted(seen, key=lambda e: e.turn_index)
    assert [t.turn_index for t in turns] == [0, 1, 2]
    assert [(link.session_event_id, link.next_event_id) for link in links] == [
        (turns[0].event_id, turns[1].event_id), (turns[1].event_id, turns[2].event_id)]
    assert links[1].next_state == {"kind": "user",
                                   "messages": [{"role": "user", "content": "three"}]}
