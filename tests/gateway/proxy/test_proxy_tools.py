"""Tool calls through the intercept proxy: the official ``openai`` client → proxy → model
server on the tiny model (forced to call by ``tool_choice``), recorded in a real store."""

from __future__ import annotations

import json

import openai

from tentalis.bus.memory import MemoryBus
from tentalis.gateway.modelserver import create_model_app
from tentalis.gateway.proxy import create_proxy_app
from tentalis.gateway.proxy.config import ProxyConfig
from tentalis.gateway.publisher import EventPublisher
from tentalis.gateway.security import SecurityConfig
from tentalis.gateway.spool import Spool
from tentalis.inference.adapters import AdapterStore
from tentalis.store.sessions import session_view

CLOCK = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object",
                                       "properties": {"zone": {"enum": ["UTC", "CET"]}},
                                       "required": ["zone"]}}}


async def test_tool_calls_and_results_pass_through_and_are_recorded(
    serve, tiny_llm, tmp_path, store, gw,  # type: ignore[no-untyped-def]
) -> None:
    bus = MemoryBus()
    await bus.connect()
    model_app = create_model_app(tiny_llm, AdapterStore(tmp_path / "adapters"),
                                 SecurityConfig.with_keys(gw.KEY, rate_limit_per_minute=0))
    async with gw.recording(bus, store), serve(model_app) as backend_url:
        config = ProxyConfig(backend_url=backend_url + "/v1", backend_api_key=gw.KEY,
                             spool_path=tmp_path / "spool.jsonl")
        publisher = EventPublisher(bus, Spool(config.spool_path), retry_interval=0.05)
        async with serve(create_proxy_app(config, publisher, None)) as url:
            client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
            session = {"X-Session-Id": "tools-1"}
            messages = [{"role": "user", "content": "What time is it?"}]
            first = await client.chat.completions.create(
                model="base", messages=messages, tools=[CLOCK], max_tokens=150, temperature=0,
                tool_choice={"type": "function", "function": {"name": "get_time"}},
                extra_headers=session)
            [call] = first.choices[0].message.tool_calls
            assert first.choices[0].finish_reason == "tool_calls"
            assert call.function.name == "get_time"
            assert json.loads(call.function.arguments)["zone"] in ("UTC", "CET")
            messages += [first.choices[0].message.model_dump(exclude_none=True),
                         {"role": "tool", "tool_call_id": call.id, "content": "12:00"}]
            await client.chat.completions.create(
                model="base", messages=messages, tools=[CLOCK], tool_choice="none",
                max_tokens=3, temperature=0, extra_headers=session)
            # streamed, and the client asks for no token ids: the turn records them anyway
            stream = await client.chat.completions.create(
                model="base", messages=[{"role": "user", "content": "Time in Paris?"}],
                tools=[CLOCK], tool_choice="required", max_tokens=150, temperature=0,
                stream=True, extra_headers={"X-Session-Id": "tools-2"})
            chunks = [c async for c in stream]
            assert all("token_ids" not in (c.choices[0].model_extra if c.choices else {})
                       for c in chunks)
            deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or ()]
            assert [d.function.name for d in deltas] == ["get_time"]
            await gw.wait_for(lambda: store.counts()["session"] == 3
                              and store.counts()["session_link"] == 1)
    view = session_view(store, "tools-1")
    assert view is not None
    turn = view.turns[0]
    assert json.loads(turn.completion)[0]["function"]["name"] == "get_time"
    assert turn.finish_reason == "tool_calls"
    assert turn.next_state == {"kind": "tool", "messages": [
        {"role": "tool", "tool_call_id": call.id, "content": "12:00"}]}
    streamed = session_view(store, "tools-2")
    assert streamed is not None
    [recorded] = streamed.turns
    assert json.loads(recorded.completion)[0]["function"]["name"] == "get_time"
    assert recorded.finish_reason == "tool_calls"
    assert recorded.completion_token_ids and recorded.prompt_token_ids
    assert len(recorded.logprobs or []) == len(recorded.completion_token_ids)
