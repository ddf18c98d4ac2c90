"""Tools and structured output on the model server: what a chat request asks for
(:func:`plan_chat`, which refuses with 400 what the server cannot honour) and the replies
(:func:`answer_chat`).

- ``tool_choice`` ``auto`` (the default with tools): the tools are rendered into the prompt
  (:mod:`tentalis.inference.tool_prompt`) and the reply parsed into ``tool_calls``. A reply
  that tries a call but does not write one that parses is generated once more under the
  call grammar (so the retry is a valid call unless it runs out of tokens); if that fails
  too, the raw text is returned with ``finish_reason: "stop"`` and the choice's
  ``tool_call_error`` saying why.
- ``required`` / a named function: decoded under the grammar of one call (to any tool, or
  to the named one), so the reply is a call whatever the model; ``finish_reason:
  "tool_calls"``.
- ``none`` (and ``auto`` without tools): the tools are not rendered; the reply is text.
- ``response_format`` ``json_object`` / ``json_schema``: decoded under the grammar of a
  JSON object / of the schema; ``text`` is the default. Other types, and a JSON format
  together with tools that may be called, are refused.
- ``parallel_tool_calls: false``: at most the first call is returned.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException

from tentalis.gateway.modelserver.state import ModelServerState
from tentalis.gateway.openai.replies import AssistantReply, tool_call
from tentalis.gateway.openai.schema import ChatCompletionRequest
from tentalis.gateway.openai.tools import NamedToolChoice
from tentalis.inference.base import Completion, OutputConstraint
from tentalis.inference.tool_prompt import call_constraint, parse_tool_calls

CHOICES = ("auto", "none", "required")
FORMATS = ("text", "json_object", "json_schema")


@dataclass(frozen=True)
class ChatPlan:
    """``tools``: rendered into the prompt; ``names``: the functions a reply may call
    (empty: the reply is text); ``constraint``: the grammar the reply is decoded under."""

    tools: tuple[dict[str, Any], ...] = ()
    names: tuple[str, ...] = ()
    constraint: OutputConstraint | None = None
    single_call: bool = False

    @property
    def plain(self) -> bool:
        return not self.tools and self.constraint is None


def _bad(message: str) -> HTTPException:
    return HTTPException(400, message)


def plan_chat(req: ChatCompletionRequest) -> ChatPlan:
    """What ``req`` asks beyond text; HTTP 400 for anything the server does not support."""
    if req.functions is not None or req.function_call is not None:
        raise _bad("functions / function_call (deprecated) are not supported; "
                   "use tools / tool_choice")
    fmt = _response_format(req)
    tools = _tools(req)
    choice = req.tool_choice if req.tool_choice is not None else (
        "auto" if tools else "none")
    if isinstance(choice, str) and choice not in CHOICES:
        raise _bad(f"tool_choice {choice!r} is not supported: use one of "
                   f"{', '.join(CHOICES)} or {{\"type\": \"function\", \"function\": "
                   "{\"name\": ...}}")
    if choice == "none" or (choice == "auto" and not tools):  # nothing to call
        return ChatPlan(constraint=fmt)
    if not tools:
        raise _bad(f"tool_choice {_choice_text(choice)} needs tools")
    if fmt is not None:
        raise _bad("response_format json_object / json_schema together with tools is not "
                   "supported (set tool_choice to none, or drop response_format)")
    names = tuple(t["function"]["name"] for t in tools)
    single = req.parallel_tool_calls is False
    if choice == "auto":
        return ChatPlan(tools=tools, names=names, single_call=single)
    if isinstance(choice, NamedToolChoice):
        if choice.type != "function":
            raise _bad(f"tool_choice type {choice.type!r} is not supported (only function)")
        if choice.function.name not in names:
            raise _bad(f"tool_choice names {choice.function.name!r}, which is not among "
                       f"the tools ({', '.join(names)})")
        forced = [t for t in tools if t["function"]["name"] == choice.function.name]
        return ChatPlan(tools=tools, names=names, constraint=call_constraint(forced),
                        single_call=single)
    return ChatPlan(tools=tools, names=names, constraint=call_constraint(tools),
                    single_call=single)


def _choice_text(choice: str | NamedToolChoice) -> str:
    return repr(choice) if isinstance(choice, str) else f"function {choice.function.name!r}"


def _tools(req: ChatCompletionRequest) -> tuple[dict[str, Any], ...]:
    out: list[dict[str, Any]] = []
    for tool in req.tools or ():
        if tool.type != "function":
            raise _bad(f"tool type {tool.type!r} is not supported (only function)")
        if tool.function is None:
            raise _bad("a function tool needs its function: {\"name\": ...}")
        out.append(tool.definition())
    names = [t["function"]["name"] for t in out]
    if len(set(names)) != len(names):
        raise _bad("tools must have distinct function names")
    return tuple(out)


def _response_format(req: ChatCompletionRequest) -> OutputConstraint | None:
    fmt = req.response_format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return OutputConstraint()
    if fmt.type == "json_schema":
        if fmt.json_schema is None or fmt.json_schema.schema_ is None:
            raise _bad("response_format json_schema needs json_schema.schema")
        return OutputConstraint(json_schema=json.dumps(fmt.json_schema.schema_,
                                                       sort_keys=True))
    raise _bad(f"response_format type {fmt.type!r} is not supported "
               f"(use one of {', '.join(FORMATS)})")


def read_reply(text: str, plan: ChatPlan) -> AssistantReply:
    """A completion's text as content and/or tool calls under ``plan``."""
    if not plan.names:
        return AssistantReply(content=text)
    parsed = parse_tool_calls(text, plan.names)
    if parsed.error is not None:
        return AssistantReply(content=text, tool_call_error=parsed.error)
    calls = parsed.calls[:1] if plan.single_call else parsed.calls
    return AssistantReply(content=parsed.content,
                          tool_calls=[tool_call(c.name, c.arguments) for c in calls])


async def answer_chat(state: ModelServerState, req: ChatCompletionRequest, plan: ChatPlan,
                      chat: list[dict[str, Any]]) -> tuple[list[Completion],
                                                           list[AssistantReply]]:
    """``req.n`` completions of ``chat`` and their replies (module doc: the retry)."""
    done = await state.generate(req.model, [chat], req.n, req, tools=plan.tools,
                                constraint=plan.constraint)
    replies = [read_reply(c.text, plan) for c in done]
    retry = [i for i, r in enumerate(replies) if r.tool_call_error is not None]
    if retry and plan.constraint is None:
        again = await state.generate(req.model, [chat], len(retry), req, tools=plan.tools,
                                     constraint=call_constraint(plan.tools))
        for i, c in zip(retry, again, strict=True):
            done[i], replies[i] = c, read_reply(c.text, plan)
    return done, replies


def needs_engine_support(plan: ChatPlan, engine: Any) -> None:
    """400 when ``plan`` needs what the engine cannot do (see ``supports_structured_output``)."""
    if not plan.plain and not getattr(engine, "supports_structured_output", False):
        raise _bad("tools and response_format need the local engine; this model server "
                   "runs another backend (call it directly)")
