"""Tool calling and structured output through the official ``openai`` client, against a
real model server on the tiny random model: what it returns is well-formed only because
the constrained decoder forces it."""

from __future__ import annotations

import json
from typing import Any, Literal

import jsonschema_rs
import openai
import pytest
from pydantic import BaseModel
from transformers import AutoTokenizer

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object",
                   "properties": {"city": {"enum": ["Paris", "Berlin"]},
                                  "unit": {"enum": ["C", "F"]}},
                   "required": ["city", "unit"]}}}
CLOCK = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object",
                                       "properties": {"utc": {"type": "boolean"}},
                                       "required": ["utc"]}}}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
ANSWER = {"type": "object",
          "properties": {"city": {"enum": ["Paris", "Berlin"]}, "sunny": {"type": "boolean"},
                         "rain": {"type": "null"}},
          "required": ["city", "sunny", "rain"]}


@pytest.fixture
def client(model_server, api_key: str) -> openai.OpenAI:  # type: ignore[no-untyped-def]
    return openai.OpenAI(base_url=model_server.url + "/v1", api_key=api_key, max_retries=0)


def _params(name: str) -> dict[str, Any]:
    return {t["function"]["name"]: t["function"]["parameters"]
            for t in (WEATHER, CLOCK)}[name]


def test_named_tool_choice_returns_a_parseable_call(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model="base", messages=ASK, tools=[WEATHER, CLOCK], max_tokens=150,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        temperature=1.0, seed=3)
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    jsonschema_rs.validate(_params("get_weather"), json.loads(call.function.arguments))


def test_required_tool_choice_calls_one_of_the_tools_in_every_choice(
    client: openai.OpenAI,
) -> None:
    resp = client.chat.completions.create(
        model="base", messages=ASK, tools=[WEATHER, CLOCK], tool_choice="required",
        max_tokens=150, n=3, temperature=1.0, seed=11)
    for choice in resp.choices:
        assert choice.finish_reason == "tool_calls", choice
        [call] = choice.message.tool_calls
        jsonschema_rs.validate(_params(call.function.name), json.loads(call.function.arguments))


def test_streamed_tool_calls_arrive_as_deltas(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="base", messages=ASK, tools=[CLOCK], tool_choice="required", max_tokens=150,
        stream=True, temperature=0, stream_options={"include_usage": True}, logprobs=True,
        extra_body={"return_token_ids": True}))
    deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or ()]
    assert [d.index for d in deltas] == [0] and deltas[0].function.name == "get_time"
    assert json.loads(deltas[0].function.arguments)["utc"] in (True, False)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "tool_calls"
    used = chunks[-1].usage
    assert used is not None and used.completion_tokens > 0
    # the first chunk carries every token's id and logprob (what a recorder keeps)
    first = chunks[0].choices[0]
    assert len(first.model_extra["token_ids"]) == len(first.logprobs.content) == \
        used.completion_tokens


def test_a_tool_result_round_trips_into_the_next_prompt(
    client: openai.OpenAI, tiny_model_dir,  # type: ignore[no-untyped-def]
) -> None:
    first = client.chat.completions.create(
        model="base", messages=ASK, tools=[WEATHER], tool_choice="required", max_tokens=150,
        temperature=0)
    call = first.choices[0].message.tool_calls[0]
    history = [*ASK, first.choices[0].message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": "18 C and sunny"}]
    second = client.chat.completions.create(
        model="base", messages=history, tools=[WEATHER], max_tokens=4, temperature=0,
        extra_body={"return_token_ids": True})
    prompt = AutoTokenizer.from_pretrained(tiny_model_dir).decode(
        second.model_extra["prompt_token_ids"])
    earlier = json.dumps({"name": "get_weather",
                          "arguments": json.loads(call.function.arguments)})
    assert f"<|im_start|>assistant\n<tool_call>\n{earlier}\n</tool_call><|im_end|>" in prompt
    assert "<|im_start|>user\n<tool_response>\n18 C and sunny\n</tool_response>" in prompt
    assert "<tools>\n" + json.dumps(WEATHER) in prompt


def test_response_format_json_schema_output_validates(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model="base", messages=ASK, max_tokens=150, n=2, temperature=1.0, seed=2,
        response_format={"type": "json_schema",
                         "json_schema": {"name": "weather", "schema": ANSWER, "strict": True}})
    for choice in resp.choices:
        assert choice.finish_reason == "stop"
        jsonschema_rs.validate(ANSWER, json.loads(choice.message.content))


class Forecast(BaseModel):
    city: Literal["Paris", "Berlin"]
    sunny: bool


def test_the_sdks_parse_helper_gets_its_pydantic_model(client: openai.OpenAI) -> None:
    resp = client.chat.completions.parse(model="base", messages=ASK, max_tokens=100,
                                         temperature=0, response_format=Forecast)
    parsed = resp.choices[0].message.parsed
    assert isinstance(parsed, Forecast) and parsed.city in ("Paris", "Berlin")


def test_response_format_json_object_parses(client: openai.OpenAI) -> None:
    # a random model fills a free-form object with random keys and strings: some samples
    # run out of tokens, so among several, the ones that stop must be JSON objects
    resp = client.chat.completions.create(
        model="base", messages=ASK, max_tokens=200, n=8, temperature=1.0, seed=1,
        response_format={"type": "json_object"})
    stopped = [c for c in resp.choices if c.finish_reason == "stop"]
    assert stopped, [c.message.content for c in resp.choices]
    for choice in stopped:
        assert isinstance(json.loads(choice.message.content), dict)


@pytest.mark.parametrize(("body", "fragment"), [
    ({"response_format": {"type": "grammar", "grammar": "root ::= 'a'"}},
     "response_format type 'grammar' is not supported"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
     "needs json_schema.schema"),
    ({"response_format": {"type": "json_schema",
                          "json_schema": {"name": "x", "schema": {"type": "object",
                                                                  "properties": 5}}}},
     "schema"),
    ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tool type 'custom'"),
    ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice 'sometimes'"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
     "'nope', which is not among the tools"),
    ({"tool_choice": "required"}, "needs tools"),
    ({"tools": [WEATHER, WEATHER]}, "distinct"),
    ({"tools": [WEATHER], "response_format": {"type": "json_object"}}, "together with tools"),
    ({"functions": [{"name": "f"}]}, "functions / function_call"),
])
def test_unsupported_shapes_are_a_400_that_says_so(
    client: openai.OpenAI, body: dict[str, Any], fragment: str,
) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="base", messages=ASK, max_tokens=4,
                                       extra_body=body)
    assert fragment in str(err.value)
