"""Tools into the prompt, tool calls out of the reply.

**Rendering.** A chat template that has a tool format (it reads ``tools``: Qwen2.5,
Hermes, SmolLM3 …) gets ``apply_chat_template(messages, tools=...)``, with earlier calls'
arguments as objects, as those templates expect. A template without one — SmolLM2-Instruct's
is plain ChatML, and so is the tiny test model's — gets the *Hermes convention*, which many
open models are trained on, spelled out in the messages themselves:

- the tool definitions go at the end of the system message (one is added when there is
  none), in ``<tools></tools>`` tags, one JSON object per line, with the instruction to
  answer a call as ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``;
- an assistant message's earlier ``tool_calls`` are appended to its text in that form;
- ``tool`` (and legacy ``function``) results become one user message holding each result
  in ``<tool_response></tool_response>`` tags (consecutive results share the message).

**Parsing** (:func:`parse_tool_calls`): every ``<tool_call>…</tool_call>`` block of the
reply (the last one may lack its closing tag) holds one call; a reply without tags that is
a single JSON object with ``name`` and ``arguments`` (or ``parameters``, Llama's spelling)
is one call too. A block that is not such an object, or names a function that was not
offered, makes the whole reply unparseable: the caller gets the reason and the raw text.

**Forcing a call** (:func:`call_constraint`): the grammar of one ``<tool_call>`` block whose
JSON matches ``{"name": <one of the tools>, "arguments": <that tool's parameters>}``; the
model server decodes under it for ``tool_choice`` ``required`` or a named function.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tentalis.inference.base import Message, OutputConstraint

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
RESPONSE_OPEN, RESPONSE_CLOSE = "<tool_response>", "</tool_response>"

TOOLS_PREAMBLE = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
)
TOOLS_INSTRUCTION = (
    "\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)

_BLOCK = re.compile(re.escape(CALL_OPEN) + r"(.*?)(?:" + re.escape(CALL_CLOSE) + r"|\Z)",
                    re.DOTALL)


def template_has_tools(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template renders a ``tools`` list itself."""
    template = getattr(tokenizer, "chat_template", None)
    return isinstance(template, str) and "tools" in template


def render_prompt(tokenizer: Any, messages: Sequence[Message],
                  tools: Sequence[dict[str, Any]] = ()) -> str:
    """The prompt text for ``messages`` (and ``tools``, OpenAI tool definitions), ending
    with the assistant's turn opening."""
    if template_has_tools(tokenizer):
        return str(tokenizer.apply_chat_template(
            [_native(m) for m in messages], tools=list(tools) or None, tokenize=False,
            add_generation_prompt=True))
    return str(tokenizer.apply_chat_template(
        conventional_messages(messages, tools), tokenize=False, add_generation_prompt=True))


def tools_block(tools: Sequence[dict[str, Any]]) -> str:
    """The system-prompt section that offers ``tools``."""
    lines = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    return TOOLS_PREAMBLE + lines + TOOLS_INSTRUCTION


def conventional_messages(messages: Sequence[Message],
                          tools: Sequence[dict[str, Any]] = ()) -> list[dict[str, str]]:
    """``messages`` as plain ``{role, content}`` text messages under the Hermes convention
    (module doc): what a template without a tool format can render."""
    out: list[dict[str, str]] = []
    for m in messages:
        role, content = str(m.get("role")), m.get("content") or ""
        if role in ("tool", "function"):
            piece = f"{RESPONSE_OPEN}\n{content}\n{RESPONSE_CLOSE}"
            if out and out[-1]["role"] == "user" and out[-1]["content"].endswith(RESPONSE_CLOSE):
                out[-1]["content"] += "\n" + piece
            else:
                out.append({"role": "user", "content": piece})
            continue
        calls = [format_call(c) for c in m.get("tool_calls") or ()]
        if calls:
            content = "\n".join(([content] if content else []) + calls)
        out.append({"role": role, "content": content})
    if tools:
        block = tools_block(tools)
        if out and out[0]["role"] in ("system", "developer"):
            out[0]["content"] = f"{out[0]['content']}\n\n{block}" if out[0]["content"] else block
        else:
            out.insert(0, {"role": "system", "content": block})
    return out


def format_call(call: dict[str, Any]) -> str:
    """One OpenAI ``tool_calls`` entry as the model writes it."""
    fn = call.get("function") or {}
    body = {"name": fn.get("name"), "arguments": _arguments_object(fn.get("arguments"))}
    return f"{CALL_OPEN}\n{json.dumps(body, ensure_ascii=False)}\n{CALL_CLOSE}"


def _arguments_object(arguments: Any) -> Any:
    """Arguments as an object when they are a JSON-object string (as OpenAI sends them)."""
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except json.JSONDecodeError:
            return arguments
    return {} if arguments is None else arguments


def _native(message: Message) -> dict[str, Any]:
    """A message for a template with a tool format: call arguments as objects."""
    out = dict(message)
    if message.get("tool_calls"):
        out["tool_calls"] = [
            {**c, "function": {**(c.get("function") or {}),
                               "arguments": _arguments_object((c.get("function") or {})
                                                              .get("arguments"))}}
            for c in message["tool_calls"]]
    if out.get("content") is None:
        out["content"] = ""
    return out


@dataclass
class ParsedCall:
    name: str
    arguments: str  # a JSON object, as text


@dataclass
class ParsedReply:
    """A reply split into text and calls; ``error`` says why calls could not be read
    (then ``calls`` is empty and ``content`` the whole reply)."""

    content: str | None
    calls: list[ParsedCall] = field(default_factory=list)
    error: str | None = None


def parse_tool_calls(text: str, names: Sequence[str]) -> ParsedReply:
    """Tool calls in ``text`` to functions among ``names`` (module doc)."""
    blocks = list(_BLOCK.finditer(text))
    if not blocks:
        bare = _bare_call(text)
        if bare is None:
            return ParsedReply(content=text or None)
        blocks_json = [text.strip()]
        rest = ""
    else:
        blocks_json = [b.group(1).strip() for b in blocks]
        rest = _BLOCK.sub("", text).strip()
    calls = []
    for raw in blocks_json:
        call, why = _read_call(raw, names)
        if call is None:
            return ParsedReply(content=text or None, error=why)
        calls.append(call)
    return ParsedReply(content=rest or None, calls=calls)


def _bare_call(text: str) -> dict[str, Any] | None:
    stripped = text.strip()
    if not stripped.startswith("{"):
        return None
    try:
        obj = json.loads(stripped)
    except json.JSONDecodeError:
        return None
    if isinstance(obj, dict) and isinstance(obj.get("name"), str) and (
            "arguments" in obj or "parameters" in obj):
        return obj
    return None


def _read_call(raw: str, names: Sequence[str]) -> tuple[ParsedCall | None, str]:
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, f"a tool call is not valid JSON ({exc.msg} at character {exc.pos})"
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None, "a tool call is not a JSON object with a string 'name'"
    if obj["name"] not in names:
        return None, f"a tool call names {obj['name']!r}, which is not among the tools"
    args = obj.get("arguments", obj.get("parameters", {}))
    args = _arguments_object(args)
    if not isinstance(args, dict):
        return None, f"the arguments of the call to {obj['name']!r} are not a JSON object"
    return ParsedCall(obj["name"], json.dumps(args, ensure_ascii=False)), ""


def call_schema(tools: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """JSON Schema of one call to one of ``tools``: ``{"name": …, "arguments": {…}}``."""
    options = []
    for tool in tools:
        fn = tool.get("function") or {}
        params = fn.get("parameters") or {"type": "object"}
        options.append({
            "type": "object",
            "properties": {"name": {"const": fn.get("name")}, "arguments": params},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        })
    return options[0] if len(options) == 1 else {"anyOf": options}


def call_constraint(tools: Sequence[dict[str, Any]]) -> OutputConstraint:
    """Decode exactly one ``<tool_call>`` block calling one of ``tools``."""
    return OutputConstraint(json_schema=json.dumps(call_schema(tools)),
                            prefix=CALL_OPEN + "\n", suffix="\n" + CALL_CLOSE)
