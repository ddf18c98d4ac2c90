"""``tool_choice: auto`` — the reply parser, its retry and its flag — on a real model
server over a deterministic engine stub that writes what each test scripts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest

from tentalis.gateway.modelserver import create_model_app
from tentalis.gateway.security import SecurityConfig
from tentalis.inference.adapters import AdapterStore
from tentalis.inference.base import ChatRequest

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object",
                                          "properties": {"city": {"type": "string"}}}}}
ASK = [{"role": "user", "content": "Weather in Paris?"}]
GOOD = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
BROKEN = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Par'


@pytest.fixture
def serve_stub(scripted_inference, server_thread, api_key: str, tmp_path: Path,  # type: ignore[no-untyped-def]
               ) -> Callable[..., Iterator[tuple[openai.OpenAI, object]]]:
    """``with serve_stub(answer) as (client, engine)``: the model server over a stub that
    answers ``answer(request)``."""
    import contextlib

    @contextlib.contextmanager
    def start(answer: Callable[[ChatRequest], str], structured: bool = True
              ) -> Iterator[tuple[openai.OpenAI, object]]:
        engine = scripted_inference(answer)
        if structured:
            engine.supports_structured_output = True
        app = create_model_app(engine, AdapterStore(tmp_path / "adapters"),
                               SecurityConfig.with_keys(api_key, rate_limit_per_minute=0))
        with server_thread(app) as server:
            yield openai.OpenAI(base_url=server.url + "/v1", api_key=api_key,
                                max_retries=0), engine
    return start


def test_auto_parses_a_call_and_passes_the_tools_to_the_engine(serve_stub) -> None:  # type: ignore[no-untyped-def]
    with serve_stub(lambda r: "Checking.\n" + GOOD) as (client, engine):
        resp = client.chat.completions.create(model="base", messages=ASK, tools=[WEATHER])
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking."
    [call] = choice.message.tool_calls
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "get_weather", {"city": "Paris"})
    [request] = engine.requests
    assert list(request.tools) == [WEATHER] and request.constraint is None


def test_auto_text_stays_text_and_none_renders_no_tools(serve_stub) -> None:  # type: ignore[no-untyped-def]
    with serve_stub(lambda r: "It is sunny.") as (client, engine):
        auto = client.chat.completions.create(model="base", messages=ASK, tools=[WEATHER])
        none = client.chat.completions.create(model="base", messages=ASK, tools=[WEATHER],
                                              tool_choice="none")
        bare = client.chat.completions.create(model="base", messages=ASK, tool_choice="auto")
    assert auto.choices[0].message.content == "It is sunny."
    assert auto.choices[0].message.tool_calls is None
    assert auto.choices[0].finish_reason == "stop"
    assert none.choices[0].message.content == "It is sunny."
    assert bare.choices[0].message.content == "It is sunny."  # auto with no tools: text
    assert [list(r.tools) for r in engine.requests] == [[WEATHER], [], []]


def test_an_unreadable_call_is_retried_under_the_call_grammar(serve_stub) -> None:  # type: ignore[no-untyped-def]
    with serve_stub(lambda r: GOOD if r.constraint is not None else BROKEN) as (client, engine):
        resp = client.chat.completions.create(model="base", messages=ASK, tools=[WEATHER])
    assert resp.choices[0].finish_reason == "tool_calls"
    assert resp.choices[0].message.tool_calls[0].function.name == "get_weather"
    first, retry = engine.requests
    assert first.constraint is None
    assert retry.constraint is not None and retry.constraint.prefix.startswith("<tool_call>")
    assert "tool_call_error" not in resp.choices[0].model_extra


def test_a_call_unreadable_twice_comes_back_as_flagged_text(serve_stub) -> None:  # type: ignore[no-untyped-def]
    with serve_stub(lambda r: BROKEN) as (client, engine):
        resp = client.chat.completions.create(model="base", messages=ASK, tools=[WEATHER])
        streamed = list(client.chat.completions.create(model="base", messages=ASK,
                                                       tools=[WEATHER], stream=True))
    choice = resp.choices[0]
    assert choice.finish_reason == "stop" and choice.message.content == BROKEN
    assert choice.message.tool_calls is None
    assert "not valid JSON" in choice.model_extra["tool_call_error"]
    assert len(engine.requests) == 4  # each request: the reply and one retry
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert text == BROKEN
    assert "not valid JSON" in streamed[-1].choices[0].model_extra["tool_call_error"]


def test_parallel_tool_calls_false_keeps_the_first_call(serve_stub) -> None:  # type: ignore[no-untyped-def]
    two = GOOD + "\n" + GOOD.replace("Paris", "Rome")
    with serve_stub(lambda r: two) as (client, _):
        both = client.chat.completions.create(model="base", messages=ASK, tools=[WEATHER])
        one = client.chat.completions.create(model="base", messages=ASK, tools=[WEATHER],
                                             parallel_tool_calls=False)
    assert [json.loads(c.function.arguments)["city"]
            for c in both.choices[0].message.tool_calls] == ["Paris", "Rome"]
    assert len(one.choices[0].message.tool_calls) == 1


def test_an_engine_without_structured_output_refuses_tools(serve_stub) -> None:  # type: ignore[no-untyped-def]
    with serve_stub(lambda r: GOOD, structured=False) as (client, engine):
        with pytest.raises(openai.BadRequestError, match="need the local engine"):
            client.chat.completions.create(model="base", messages=ASK, tools=[WEATHER])
        with pytest.raises(openai.BadRequestError, match="need the local engine"):
            client.chat.completions.create(model="base", messages=ASK,
                                           response_format={"type": "json_object"})
        plain = client.chat.completions.create(model="base", messages=ASK)
    assert plain.choices[0].message.content == GOOD  # no tools asked: text as ever
    assert len(engine.requests) == 1
