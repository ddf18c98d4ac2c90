"""Constrained decoding in the local engine (inference/grammar.py + the decode loop's
mask hook) on the tiny random model: its output is gibberish, so whatever matches the
schema does so because of the mask."""

from __future__ import annotations

import json

import jsonschema_rs
import pytest

from tentalis.errors import InferenceError
from tentalis.inference import ChatRequest
from tentalis.inference.base import OutputConstraint
from tentalis.inference.local import LocalInference
from tentalis.inference.tool_prompt import call_constraint, parse_tool_calls

SCHEMA = {"type": "object",
          "properties": {"city": {"enum": ["Paris", "Berlin", "Rome"]},
                         "sunny": {"type": "boolean"}},
          "required": ["city", "sunny"]}
HELLO = [{"role": "user", "content": "Weather?"}]


def _request(constraint: OutputConstraint | None = None, **kw) -> ChatRequest:  # type: ignore[no-untyped-def]
    return ChatRequest(messages=HELLO, max_tokens=kw.pop("max_tokens", 100),
                       temperature=kw.pop("temperature", 0.0), constraint=constraint, **kw)


async def test_schema_rows_match_and_plain_rows_in_the_same_batch_do_not_change(
    llm: LocalInference,
) -> None:
    schema = OutputConstraint(json_schema=json.dumps(SCHEMA))
    alone = (await llm.chat([_request(max_tokens=12)]))[0]
    batch = await llm.chat([_request(schema), _request(max_tokens=12),
                            _request(schema, temperature=1.0, seed=5)])
    for done in (batch[0], batch[2]):
        assert done.finish_reason == "stop"
        jsonschema_rs.validate(SCHEMA, json.loads(done.text))
        assert done.completion_token_ids[-1] in llm._eos_ids  # ended right after the JSON
        assert all(lp <= 0 for lp in done.logprobs or [])
    assert batch[1].text == alone.text and batch[1].completion_token_ids == \
        alone.completion_token_ids
    assert not _is_json(alone.text)  # without the mask the tiny model writes no JSON


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


async def test_a_forced_tool_call_parses(llm: LocalInference) -> None:
    tool = {"type": "function", "function": {
        "name": "set_mode", "parameters": {
            "type": "object", "properties": {"mode": {"enum": ["on", "off"]}},
            "required": ["mode"]}}}
    done = (await llm.chat([_request(call_constraint([tool]), tools=[tool],
                                     temperature=1.0, seed=1, max_tokens=150)]))[0]
    assert done.text.startswith("<tool_call>\n") and done.text.endswith("\n</tool_call>")
    parsed = parse_tool_calls(done.text, ["set_mode"])
    assert parsed.error is None and parsed.content is None
    assert [c.name for c in parsed.calls] == ["set_mode"]
    assert json.loads(parsed.calls[0].arguments)["mode"] in ("on", "off")


@pytest.mark.parametrize("schema", ["{not json", json.dumps({"type": "object",
                                                            "properties": 5})])
async def test_a_schema_that_cannot_be_enforced_is_refused_before_decoding(
    llm: LocalInference, schema: str,
) -> None:
    with pytest.raises(InferenceError, match="schema"):
        await llm.chat([_request(OutputConstraint(json_schema=schema))])
    assert llm.batches == 0
