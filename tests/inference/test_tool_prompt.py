"""Tools into the prompt and tool calls out of the reply (inference/tool_prompt.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tentalis.inference.tool_prompt import (
    call_schema,
    conventional_messages,
    parse_tool_calls,
    render_prompt,
    template_has_tools,
)

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
CALL = {"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": "18 C, sunny"},
]


def test_tools_go_into_the_system_message_and_one_is_added_when_missing() -> None:
    added = conventional_messages([{"role": "user", "content": "hi"}], [WEATHER])
    assert [m["role"] for m in added] == ["system", "user"]
    assert "<tools>\n" + json.dumps(WEATHER) + "\n</tools>" in added[0]["content"]
    assert "<tool_call>" in added[0]["content"]
    kept = conventional_messages([{"role": "system", "content": "Be brief."},
                                  {"role": "user", "content": "hi"}], [WEATHER])
    assert kept[0]["content"].startswith("Be brief.\n\n# Tools")
    assert conventional_messages([{"role": "user", "content": "hi"}]) == [
        {"role": "user", "content": "hi"}]


def test_earlier_calls_and_tool_results_are_rendered_not_dropped() -> None:
    out = conventional_messages(
        [*HISTORY, {"role": "tool", "tool_call_id": "call_2", "content": "12 C"}])
    assert out[1] == {"role": "assistant", "content": '<tool_call>\n{"name": "get_weather", '
                      '"arguments": {"city": "Paris"}}\n</tool_call>'}
    # consecutive results share one user message
    assert out[2] == {"role": "user", "content": "<tool_response>\n18 C, sunny\n"
                      "</tool_response>\n<tool_response>\n12 C\n</tool_response>"}
    assert len(out) == 3


def test_the_tiny_models_chatml_prompt_holds_the_tool_exchange(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert not template_has_tools(tok)
    text = render_prompt(tok, HISTORY, [WEATHER])
    assert text.startswith("<|im_start|>system\n# Tools")
    assert '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather"' in text
    assert "<|im_start|>user\n<tool_response>\n18 C, sunny\n</tool_response><|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")


class _ToolTemplate:
    """A tokenizer whose template has its own tool format: it is handed ``tools``."""

    chat_template = "{{ tools }}"

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}

    def apply_chat_template(self, messages: list[dict[str, Any]], **kw: Any) -> str:
        self.seen = {"messages": messages, **kw}
        return "prompt"


def test_a_template_with_a_tool_format_gets_tools_and_argument_objects() -> None:
    tok = _ToolTemplate()
    assert template_has_tools(tok)
    assert render_prompt(tok, HISTORY, [WEATHER]) == "prompt"
    assert tok.seen["tools"] == [WEATHER]
    call = tok.seen["messages"][1]["tool_calls"][0]
    assert call["function"]["arguments"] == {"city": "Paris"}
    assert tok.seen["messages"][1]["content"] == ""


@pytest.mark.parametrize(("text", "content", "calls"), [
    ('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
     None, [("get_weather", {"city": "Paris"})]),
    ('Let me check.\n<tool_call>{"name": "get_weather", "arguments": {"city": "A"}}'
     '</tool_call>\n<tool_call>{"name": "get_time", "arguments": "{\\"tz\\": \\"UTC\\"}"}'
     '</tool_call>',
     "Let me check.", [("get_weather", {"city": "A"}), ("get_time", {"tz": "UTC"})]),
    ('<tool_call>{"name": "get_time", "arguments": {}}', None, [("get_time", {})]),
    ('{"name": "get_time", "parameters": {"tz": "CET"}}', None, [("get_time", {"tz": "CET"})]),
    ("It is sunny.", "It is sunny.", []),
    ('{"answer": 4}', '{"answer": 4}', []),
])
def test_replies_parse_into_text_and_calls(text: str, content: str | None,
                                           calls: list[tuple[str, dict[str, Any]]]) -> None:
    parsed = parse_tool_calls(text, ["get_weather", "get_time"])
    assert parsed.error is None
    assert parsed.content == content
    assert [(c.name, json.loads(c.arguments)) for c in parsed.calls] == calls


@pytest.mark.parametrize(("text", "why"), [
    ('<tool_call>{"name": "get_weather", "arguments": {"city": </tool_call>', "not valid JSON"),
    ('<tool_call>{"name": "launch", "arguments": {}}</tool_call>', "'launch'"),
    ('<tool_call>["get_weather"]</tool_call>', "string 'name'"),
    ('<tool_call>{"name": "get_weather", "arguments": [1]}</tool_call>', "not a JSON object"),
])
def test_unreadable_calls_keep_the_text_and_say_why(text: str, why: str) -> None:
    parsed = parse_tool_calls(text, ["get_weather"])
    assert parsed.calls == [] and parsed.content == text
    assert parsed.error is not None and why in parsed.error


def test_call_schema_names_each_tool_with_its_parameters() -> None:
    one = call_schema([WEATHER])
    assert one["properties"]["name"] == {"const": "get_weather"}
    assert one["properties"]["arguments"] == WEATHER["function"]["parameters"]
    bare = {"type": "function", "function": {"name": "now"}}
    two = call_schema([WEATHER, bare])
    assert [o["properties"]["name"]["const"] for o in two["anyOf"]] == ["get_weather", "now"]
    assert two["anyOf"][1]["properties"]["arguments"] == {"type": "object"}
