"""Completions → OpenAI-shaped response bodies and SSE chunks (see ``openai.schema``)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tentalis.gateway.openai.schema import usage
from tentalis.inference.base import Completion

if TYPE_CHECKING:
    from tentalis.gateway.openai.replies import AssistantReply


class TokenText:
    """Token ids → token strings and text pieces, with the engine's tokenizer if it has
    one (``LocalInference.tokenizer``); otherwise tokens read ``token_id:<id>``."""

    def __init__(self, tokenizer: Any | None, as_ids: bool = False) -> None:
        self.tokenizer = tokenizer
        self.as_ids = as_ids or tokenizer is None

    def token(self, token_id: int) -> str:
        if self.as_ids:
            return f"token_id:{token_id}"
        return str(self.tokenizer.decode([token_id]))

    def entry(self, token_id: int, logprob: float,
              top: list[tuple[int, float]] | None = None) -> dict[str, Any]:
        """One position of a chat ``logprobs.content``: the token and its ``top_logprobs``."""
        tok = self.token(token_id)
        return {"token": tok, "logprob": logprob, "bytes": list(tok.encode()),
                "top_logprobs": [{"token": (t := self.token(i)), "logprob": lp,
                                  "bytes": list(t.encode())} for i, lp in top or ()]}

    def chat_logprobs(self, c: Completion, start: int = 0, end: int | None = None
                      ) -> dict[str, Any] | None:
        if c.logprobs is None:
            return None
        tops = c.top_logprobs or []
        content = [self.entry(tid, lp, tops[k] if k < len(tops) else None)
                   for k, (tid, lp) in enumerate(zip(c.completion_token_ids, c.logprobs,
                                                     strict=False))]
        return {"content": content[start:end]}

    def text_logprobs(self, c: Completion) -> dict[str, Any] | None:
        if c.logprobs is None:
            return None
        return self.text_entries(c.completion_token_ids[: len(c.logprobs)], c.logprobs,
                                 c.top_logprobs)

    def text_entries(self, ids: list[int], logprobs: list[float],
                     tops: list[list[tuple[int, float]]] | None, offset: int = 0
                     ) -> dict[str, Any]:
        """A legacy completion's ``logprobs`` for ``ids``, whose text starts at ``offset``:
        ``top_logprobs`` maps token → logprob per position (None when none were asked)."""
        tokens = [self.token(t) for t in ids]
        offsets, at = [], offset
        for tok in tokens:
            offsets.append(at)
            at += len(tok)
        top = None if tops is None else [{self.token(i): lp for i, lp in t} for t in tops]
        return {"tokens": tokens, "token_logprobs": list(logprobs), "top_logprobs": top,
                "text_offset": offsets}


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def _finish(c: Completion) -> str:
    return "length" if c.finish_reason == "length" else "stop"


def chat_body(model: str, completions: list[Completion], text: TokenText, *,
              logprobs: bool, token_ids: bool,
              replies: Sequence[AssistantReply] | None = None) -> dict[str, Any]:
    """The body of a chat completion; ``replies`` (one per completion) give the messages
    when tools were offered (content, ``tool_calls``, ``tool_call_error``)."""
    choices = []
    for i, c in enumerate(completions):
        reply = replies[i] if replies is not None else None
        choice: dict[str, Any] = {
            "index": i,
            "message": {"role": "assistant", "content": c.text} if reply is None
            else reply.message(),
            "finish_reason": _finish(c) if reply is None else reply.finish_reason(c),
            "logprobs": text.chat_logprobs(c) if logprobs else None,
        }
        if reply is not None and reply.tool_call_error is not None:
            choice["tool_call_error"] = reply.tool_call_error
        if token_ids:
            choice["token_ids"] = list(c.completion_token_ids)
        choices.append(choice)
    body: dict[str, Any] = {
        "id": _id("chatcmpl"), "object": "chat.completion", "created": int(time.time()),
        "model": model, "choices": choices,
        "usage": usage(len(completions[0].prompt_token_ids),
                       sum(len(c.completion_token_ids) for c in completions)),
    }
    if token_ids:
        body["prompt_token_ids"] = list(completions[0].prompt_token_ids)
    return body


def text_body(model: str, completions: list[Completion], text: TokenText, *,
              logprobs: bool, token_ids: bool, per_prompt: int) -> dict[str, Any]:
    choices = []
    for i, c in enumerate(completions):
        choice: dict[str, Any] = {"index": i, "text": c.text, "finish_reason": _finish(c),
                                  "logprobs": text.text_logprobs(c) if logprobs else None}
        if token_ids:
            choice["token_ids"] = list(c.completion_token_ids)
            choice["prompt_token_ids"] = list(c.prompt_token_ids)
        choices.append(choice)
    prompt_tokens = sum(len(c.prompt_token_ids) for c in completions[::per_prompt])
    return {
        "id": _id("cmpl"), "object": "text_completion", "created": int(time.time()),
        "model": model, "choices": choices,
        "usage": usage(prompt_tokens, sum(len(c.completion_token_ids) for c in completions)),
    }


def sse(data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {payload}\n\n".encode()
