"""What a chat choice answers when tools are offered: text, tool calls, or text flagged as
an unreadable call (:class:`AssistantReply`), and the SSE chunks of such a reply."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from tentalis.gateway.openai.render import TokenText, sse
from tentalis.gateway.openai.schema import usage
from tentalis.inference.base import Completion


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


@dataclass
class AssistantReply:
    """One choice's answer: ``content`` and/or ``tool_calls`` (OpenAI dicts), or, when the
    model wrote a call that could not be read, its raw text with ``tool_call_error``."""

    content: str | None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tool_call_error: str | None = None

    def message(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = self.tool_calls
        return out

    def finish_reason(self, completion: Completion) -> str:
        if self.tool_calls:
            return "tool_calls"
        return "length" if completion.finish_reason == "length" else "stop"


def tool_call(name: str, arguments: str) -> dict[str, Any]:
    return {"id": new_call_id(), "type": "function",
            "function": {"name": name, "arguments": arguments}}


def tool_chunks(model: str, completions: Sequence[Completion],
                replies: Sequence[AssistantReply], text: TokenText, *, logprobs: bool,
                token_ids: bool, include_usage: bool) -> Iterator[bytes]:
    """The SSE events of a streamed reply to a request with tools, sent once the reply is
    complete (a call is only known to be one when it is whole): per choice a role chunk,
    the text if any, one ``tool_calls`` delta per call (id, name, all the arguments),
    then ``finish_reason``. The first chunk of each choice carries all its logprobs (when
    asked) and, with ``return_token_ids``, all its token ids."""
    cid, created = "chatcmpl-" + uuid.uuid4().hex, int(time.time())

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return sse({"id": cid, "object": "chat.completion.chunk", "created": created,
                    "model": model, "choices": choices, **extra})

    for i, (c, reply) in enumerate(zip(completions, replies, strict=True)):
        first: dict[str, Any] = {"index": i, "delta": {"role": "assistant", "content": ""},
                                 "logprobs": text.chat_logprobs(c) if logprobs else None,
                                 "finish_reason": None}
        extra: dict[str, Any] = {}
        if token_ids:
            first["token_ids"] = list(c.completion_token_ids)
            if i == 0:
                extra["prompt_token_ids"] = list(c.prompt_token_ids)
        yield chunk([first], **extra)
        if reply.content:
            yield chunk([{"index": i, "delta": {"content": reply.content},
                          "logprobs": None, "finish_reason": None}])
        for k, call in enumerate(reply.tool_calls):
            yield chunk([{"index": i, "delta": {"tool_calls": [{"index": k, **call}]},
                          "logprobs": None, "finish_reason": None}])
        end: dict[str, Any] = {"index": i, "delta": {}, "logprobs": None,
                               "finish_reason": reply.finish_reason(c)}
        if reply.tool_call_error:
            end["tool_call_error"] = reply.tool_call_error
        yield chunk([end])
    if include_usage:
        yield chunk([], usage=usage(len(completions[0].prompt_token_ids),
                                    sum(len(c.completion_token_ids) for c in completions)))
    yield sse("[DONE]")
