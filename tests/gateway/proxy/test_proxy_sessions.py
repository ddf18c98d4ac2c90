"""Training data from every call and sessions a client can find, through the real proxy
(uvicorn) with the official ``openai`` client: token ids recorded when the client did not
ask for them (and its answer has none), X-Session-Id on every answer, refused calls
recorded as failed turns the next-state link skips, side turns, compacted histories."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tentalis.bus.memory import MemoryBus
from tentalis.gateway.modelserver import create_model_app
from tentalis.gateway.proxy import create_proxy_app
from tentalis.gateway.proxy.config import ProxyConfig
from tentalis.gateway.publisher import EventPublisher
from tentalis.gateway.security import SecurityConfig
from tentalis.gateway.spool import Spool
from tentalis.inference.adapters import AdapterStore
from tentalis.store.sessions import session_view

CHAT = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"}]


@contextlib.asynccontextmanager
async def proxy(serve: Any, backend: Any, bus: Any, tmp: Path,
                security: SecurityConfig | None = None, **config: Any
                ) -> AsyncIterator[tuple[str, EventPublisher]]:
    async with serve(backend) as backend_url:
        cfg = ProxyConfig(backend_url=backend_url + "/v1", spool_path=tmp / "spool.jsonl",
                          **config)
        publisher = EventPublisher(bus, Spool(cfg.spool_path), retry_interval=0.05)
        async with serve(create_proxy_app(cfg, publisher, security)) as url:
            yield url, publisher


async def _bus() -> MemoryBus:
    bus = MemoryBus()
    await bus.connect()
    return bus


async def test_token_ids_are_recorded_when_the_client_did_not_ask_and_not_returned(
    serve, tiny_llm, tmp_path, store, gw
) -> None:
    bus = await _bus()
    model_app = create_model_app(tiny_llm, AdapterStore(tmp_path / "adapters"),
                                 SecurityConfig(rate_limit_per_minute=0))
    async with gw.recording(bus, store), proxy(serve, model_app, bus, tmp_path) as (url, _):
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        plain = await client.chat.completions.with_raw_response.create(
            model="base", messages=CHAT, max_tokens=5, temperature=0,
            extra_headers={"X-Session-Id": "train"})
        body = json.loads(plain.content)
        assert "prompt_token_ids" not in body and "token_ids" not in body["choices"][0]
        assert body["choices"][0]["logprobs"] is None
        streamed = {"model": "base", "messages": CHAT, "max_tokens": 5, "temperature": 0,
                    "stream": True}
        async with httpx.AsyncClient(base_url=url, timeout=30) as http, http.stream(
                "POST", "/v1/chat/completions", headers={"X-Session-Id": "train"},
                json=streamed) as resp:
            raw = b"".join([c async for c in resp.aiter_raw()])
        assert raw.endswith(b"data: [DONE]\n\n") and b"token_ids" not in raw
        assert b'"logprobs":{' not in raw
        text = await client.completions.create(model="base", prompt="Hi", max_tokens=4,
                                               extra_headers={"X-Session-Id": "train"})
        assert text.choices[0].logprobs is None
        assert "token_ids" not in (text.choices[0].model_extra or {})
        await gw.wait_for(lambda: store.counts()["session"] == 3)
    view = session_view(store, "train")
    assert view is not None and len(view.turns) == 3
    for turn in view.turns:
        assert turn.trainable and turn.prompt_token_ids and turn.completion_token_ids
        assert turn.logprobs is not None
        assert len(turn.logprobs) == len(turn.completion_token_ids)
    # the prompt ids are the backend's own tokenisation of what it was sent
    tok = tiny_llm.tokenizer
    text = tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    assert view.turns[0].prompt_token_ids == tok(text, add_special_tokens=False)["input_ids"]
    assert view.turns[0].completion_token_ids == view.turns[1].completion_token_ids


def refusing_backend() -> FastAPI:
    """An OpenAI-like backend that refuses vLLM's extension, as api.openai.com does."""
    app = FastAPI()
    app.state.seen = []

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = await request.json()
        app.state.seen.append(body)
        if "return_token_ids" in body:
            return JSONResponse({"error": {"message": "Unrecognized request argument "
                                                      "supplied: return_token_ids"}}, 400)
        return {"id": "c", "object": "chat.completion", "model": body["model"], "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"},
             "finish_reason": "stop"}]}

    return app


async def test_a_backend_that_refuses_the_extension_is_asked_again_without_it(
    serve, tmp_path
) -> None:
    bus = await _bus()
    backend = refusing_backend()
    got: list[Any] = []

    async def keep(event: Any) -> None:
        got.append(event)

    await bus.listen(["tentalis.ev.>"], keep)
    async with proxy(serve, backend, bus, tmp_path) as (url, publisher):
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        done = await client.chat.completions.create(model="m", messages=CHAT)
        assert done.choices[0].message.content == "ok"
        await publisher.flush()
    assert ["return_token_ids" in b for b in backend.state.seen] == [True, False]
    [turn] = got
    assert turn.trainable and turn.prompt_token_ids is None and turn.logprobs is None


async def test_every_answer_names_its_session(serve, backend_app, tmp_path, gw) -> None:
    bus = await _bus()
    security = SecurityConfig.with_keys(gw.KEY, rate_limit_per_minute=0, max_tokens=100)
    auth = {"Authorization": f"Bearer {gw.KEY}"}
    async with proxy(serve, backend_app, bus, tmp_path, security) as (url, _), \
            httpx.AsyncClient(base_url=url, timeout=10) as http:
        body = {"model": "tiny", "messages": CHAT}
        plain = await http.post("/v1/chat/completions", json=body, headers=auth)
        sid = plain.headers["x-session-id"]
        assert plain.status_code == 200 and sid.startswith("conv-")
        async with http.stream("POST", "/v1/chat/completions", headers=auth,
                               json={**body, "stream": True}) as streamed:
            assert streamed.headers["x-session-id"] == sid
            await streamed.aread()
        failed = await http.post("/v1/chat/completions", json={**body, "model": "fail-500"},
                                 headers=auth)
        refused = await http.post("/v1/chat/completions", json={**body, "max_tokens": 10**6},
                                  headers=auth)
        assert (failed.status_code, refused.status_code) == (502, 400)
        assert failed.headers["x-session-id"] == refused.headers["x-session-id"] == sid
        mine = {"X-Session-Id": "mine"}
        unauthorized = await http.post("/v1/chat/completions", json=body, headers=mine)
        malformed = await http.post("/v1/chat/completions", json={"model": "tiny"},
                                    headers={**auth, **mine})
        assert (unauthorized.status_code, malformed.status_code) == (401, 422)
        assert unauthorized.headers["x-session-id"] == malformed.headers["x-session-id"] \
            == "mine"
        text = await http.post("/v1/completions", json={"model": "tiny", "prompt": "p"},
                               headers={**auth, **mine})
        assert text.headers["x-session-id"] == "mine"


async def test_refused_and_failed_calls_are_recorded_and_skipped_by_the_link(
    serve, backend_app, tmp_path, store, gw
) -> None:
    bus = await _bus()
    security = SecurityConfig(rate_limit_per_minute=0, max_tokens=64)
    session = {"X-Session-Id": "agent-1"}
    async with gw.recording(bus, store), proxy(serve, backend_app, bus, tmp_path, security) \
            as (url, _):
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        messages: list[dict[str, Any]] = [{"role": "user", "content": "step one"}]
        first = await client.chat.completions.create(model="tiny", messages=messages,
                                                     extra_headers=session)
        messages += [{"role": "assistant", "content": first.choices[0].message.content},
                     {"role": "user", "content": "step two"}]
        with pytest.raises(openai.BadRequestError, match="max_tokens=8192 is outside"):
            await client.chat.completions.create(model="tiny", messages=messages,
                                                 max_tokens=8192, extra_headers=session)
        with pytest.raises(openai.BadRequestError, match="bad model"):
            await client.chat.completions.create(model="fail-400", messages=messages,
                                                 extra_headers=session)
        last = await client.chat.completions.with_raw_response.create(
            model="tiny", messages=messages, extra_headers=session)
        await gw.wait_for(lambda: store.counts()["session"] == 4
                          and store.counts()["session_link"] == 1)
    view = session_view(store, "agent-1")
    assert view is not None
    turns = view.turns
    assert [t.turn_index for t in turns] == [0, 1, 2, 3]
    assert [t.finish_reason for t in turns[1:3]] == ["error:rejected", "error:400"]
    assert [t.trainable for t in turns] == [True, False, False, True]
    assert turns[1].messages[-1]["content"] == "step two"  # the refused call, as sent
    link = store.read("SELECT session_event_id, next_event_id FROM session_links")
    assert [tuple(r) for r in link] == [(turns[0].event_id, turns[3].event_id)]
    assert turns[0].next_state == {"kind": "user",
                                   "messages": [{"role": "user", "content": "step two"}]}
    assert last.headers["x-session-id"] == "agent-1"


async def test_side_turns_by_header_and_by_rule(serve, backend_app, tmp_path) -> None:
    bus = await _bus()
    got: list[Any] = []

    async def keep(event: Any) -> None:
        if event.kind == "session":
            got.append(event)

    await bus.listen(["tentalis.ev.>"], keep)
    async with proxy(serve, backend_app, bus, tmp_path,
                     side_turn_pattern=r"(?i)^summari[sz]e\b") as (url, publisher):
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        await client.chat.completions.create(model="tiny", messages=CHAT)
        await client.chat.completions.create(model="tiny", messages=CHAT,
                                             extra_headers={"X-Tentalis-Turn": "side"})
        compaction = [{"role": "system", "content": "Summarize the conversation so far."},
                      {"role": "user", "content": "user: hi\nassistant: hello"}]
        await client.chat.completions.create(model="tiny", messages=compaction)
        await publisher.flush()
    assert [(e.turn_type, e.trainable) for e in got] == [
        ("main", True), ("side", False), ("side", False)]
    asked = ["return_token_ids" in seen["body"] for seen in backend_app.state.seen]
    assert asked == [True, False, False]  # only trainable calls ask for training data


async def test_a_compacted_history_stays_in_its_session(serve, backend_app, tmp_path) -> None:
    bus = await _bus()
    async with proxy(serve, backend_app, bus, tmp_path) as (url, _), \
            httpx.AsyncClient(base_url=url, timeout=10) as http:
        messages = list(CHAT)
        ids = []
        for nxt in ("and then?", "go on"):
            r = await http.post("/v1/chat/completions",
                                json={"model": "tiny", "messages": messages})
            ids.append(r.headers["x-session-id"])
            messages += [r.json()["choices"][0]["message"], {"role": "user", "content": nxt}]
        compacted = [CHAT[0], {"role": "user", "content": "Summary of the earlier turns."},
                     *messages[-3:], {"role": "assistant", "content": "…"},
                     {"role": "user", "content": "finish"}]
        r = await http.post("/v1/chat/completions",
                            json={"model": "tiny", "messages": compacted})
        ids.append(r.headers["x-session-id"])
    assert len(set(ids)) == 1
