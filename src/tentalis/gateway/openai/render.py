"""Completions → OpenAI-shaped response bodies and SSE chunks (see ``openai.schema``)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
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

    def pieces(self, completion: Completion) -> list[str]:
        """One text piece per token whose concatenation is ``completion.text``; falls back
        to a single piece when the tokens do not decode to the text exactly."""
        ids = completion.completion_token_ids
        if self.tokenizer is None or not ids:
            return [completion.text]
        out, previous = [], ""
        for i in range(len(ids)):
            text = self.tokenizer.decode(ids[: i + 1], skip_special_tokens=True)
            out.append(text[len(previous):] if text.startswith(previous) else "")
            previous = text
        return out if "".join(out) == completion.text else [completion.text]

    def chat_logprobs(self, c: Completion, start: int = 0, end: int | None = None
                      ) -> dict[str, Any] | None:
        if c.logprobs is None:
            return None
        content = []
        for tid, lp in list(zip(c.completion_token_ids, c.logprobs, strict=False))[start:end]:
            tok = self.token(tid)
            content.append({"token": tok, "logprob": lp, "bytes": list(tok.encode()),
                            "top_logprobs": []})
        return {"content": content}

    def text_logprobs(self, c: Completion) -> dict[str, Any] | None:
        if c.logprobs is None:
            return None
        tokens = [self.token(t) for t in c.completion_token_ids[: len(c.logprobs)]]
        offsets, at = [], 0
        for tok in tokens:
            offsets.append(at)
            at += len(tok)
        return {"tokens": tokens, "token_logprobs": list(c.logprobs),
                "top_logprobs": None, "text_offset": offsets}


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


def chat_chunks(model: str, completions: list[Completion], text: TokenText, *,
                logprobs: bool, token_ids: bool, include_usage: bool) -> Iterator[bytes]:
    """The SSE events of a streamed chat completion, one content chunk per token."""
    cid, created = _id("chatcmpl"), int(time.time())

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return sse({"id": cid, "object": "chat.completion.chunk", "created": created,
                    "model": model, "choices": choices, **extra})

    first: dict[str, Any] = {"prompt_token_ids": list(completions[0].prompt_token_ids)} \
        if token_ids else {}
    for i, c in enumerate(completions):
        yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""},
                      "logprobs": None, "finish_reason": None}], **(first if i == 0 else {}))
        pieces = text.pieces(c)
        per_token = len(pieces) == len(c.completion_token_ids)
        for j, piece in enumerate(pieces):
            choice: dict[str, Any] = {"index": i, "delta": {"content": piece},
                                      "finish_reason": None, "logprobs": None}
            if logprobs:
                choice["logprobs"] = text.chat_logprobs(c, j, j + 1) if per_token \
                    else text.chat_logprobs(c)
            if token_ids:
                choice["token_ids"] = [c.completion_token_ids[j]] if per_token \
                    else list(c.completion_token_ids)
            yield chunk([choice])
        yield chunk([{"index": i, "delta": {}, "logprobs": None, "finish_reason": _finish(c)}])
    if include_usage:
        yield chunk([], usage=usage(len(completions[0].prompt_token_ids),
                                    sum(len(c.completion_token_ids) for c in completions)))
    yield sse("[DONE]")


def text_chunks(model: str, completions: list[Completion], text: TokenText, *,
                include_usage: bool, per_prompt: int) -> Iterator[bytes]:
    """The SSE events of a streamed text completion, one chunk per token."""
    cid, created = _id("cmpl"), int(time.time())
    for i, c in enumerate(completions):
        for piece in text.pieces(c):
            yield sse({"id": cid, "object": "text_completion", "created": created,
                       "model": model, "choices": [{"index": i, "text": piece,
                                                    "finish_reason": None, "logprobs": None}]})
        yield sse({"id": cid, "object": "text_completion", "created": created, "model": model,
                   "choices": [{"index": i, "text": "", "finish_reason": _finish(c),
                                "logprobs": None}]})
    if include_usage:
        prompt_tokens = sum(len(c.prompt_token_ids) for c in completions[::per_prompt])
        yield sse({"id": cid, "object": "text_completion", "created": created, "model": model,
                   "choices": [], "usage": usage(
                       prompt_tokens, sum(len(c.completion_token_ids) for c in completions))})
    yield sse("[DONE]")
