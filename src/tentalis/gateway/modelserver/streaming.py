"""Streamed completions: an SSE chunk per token, sent as the engine decodes it.

:func:`open_stream` waits for the first tokens before it answers, so a request the engine
refuses (unknown model, prompt too long …) still gets a plain 4xx; after that, every
:class:`~tentalis.inference.base.TokenDelta` becomes one chunk per token, and a choice's
last delta a chunk with its ``finish_reason``. Choices of one call (``n``, several
prompts) interleave as their rows decode. Text deltas come from an
:class:`~tentalis.inference.detokenize.IncrementalDecoder`, checked against the finished
completion's text: a choice's pieces always add up to exactly the text a non-streamed
call returns. A client that disconnects stops the generator, which ends its rows.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from fastapi.responses import StreamingResponse

from tentalis.errors import InferenceError
from tentalis.gateway.modelserver.state import ModelServerState, http_errors
from tentalis.gateway.openai.render import TokenText, sse
from tentalis.gateway.openai.schema import usage
from tentalis.gateway.security import redact
from tentalis.gateway.security.guard import error_body
from tentalis.inference.base import ChatRequest, Completion, TokenDelta
from tentalis.inference.detokenize import IncrementalDecoder


def _finish(c: Completion) -> str:
    return "length" if c.finish_reason == "length" else "stop"


class _Choice:
    """One choice's text so far: per-token pieces that add up to the final text."""

    def __init__(self, tokenizer: Any | None) -> None:
        self.decoder = IncrementalDecoder(tokenizer) if tokenizer is not None else None
        self.text = ""
        self.completion: Completion | None = None

    def pieces(self, delta: TokenDelta) -> list[tuple[int | None, str]]:
        """``(token id, text piece)`` per token of ``delta``; on the last delta the final
        piece completes the text (a ``None`` token when the delta has no tokens left)."""
        final = delta.completion.text if delta.completion is not None else None
        ids: list[int | None] = list(delta.token_ids)
        if final is None and delta.text is not None:  # the engine sent the text itself
            self.text += delta.text
            return [(t, "") for t in ids[:-1]] + [(ids[-1] if ids else None, delta.text)]
        if final is not None and not ids and final != self.text:
            ids = [None]
        out: list[tuple[int | None, str]] = []
        for k, tid in enumerate(ids):
            if final is not None and k == len(ids) - 1:
                piece = final[len(self.text):] if final.startswith(self.text) else ""
            else:
                piece = self.decoder.push(tid) if self.decoder and tid is not None else ""
                if final is not None and not final.startswith(self.text + piece):
                    piece = ""  # held back: the completion's own text decides at the end
            self.text += piece
            out.append((tid, piece))
        self.completion = delta.completion or self.completion
        return out


class _Chunks:
    """Shared bookkeeping of a streamed response (one per response)."""

    object_type = ""
    _prefix = ""

    def __init__(self, model: str, text: TokenText, *, logprobs: bool, token_ids: bool,
                 include_usage: bool) -> None:
        self.model, self.text = model, text
        self.logprobs, self.token_ids, self.include_usage = logprobs, token_ids, include_usage
        self.id = f"{self._prefix}-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.choices: dict[int, _Choice] = {}

    def chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return sse({"id": self.id, "object": self.object_type, "created": self.created,
                    "model": self.model, "choices": choices, **extra})

    def choice(self, index: int) -> _Choice:
        if index not in self.choices:
            self.choices[index] = _Choice(self.text.tokenizer)
        return self.choices[index]

    def prompt_tokens(self) -> int:
        return len(next(iter(self._completions()), Completion("")).prompt_token_ids)

    def _completions(self) -> list[Completion]:
        return [c.completion for _, c in sorted(self.choices.items()) if c.completion]

    def end(self) -> Iterator[bytes]:
        if self.include_usage:
            done = self._completions()
            yield self.chunk([], usage=usage(self.prompt_tokens(),
                                             sum(len(c.completion_token_ids) for c in done)))
        yield sse("[DONE]")

    def delta(self, d: TokenDelta) -> Iterator[bytes]:
        raise NotImplementedError


class ChatChunks(_Chunks):
    """``chat.completion.chunk`` events (OpenAI's streaming chat shape)."""

    object_type, _prefix = "chat.completion.chunk", "chatcmpl"

    def delta(self, d: TokenDelta) -> Iterator[bytes]:
        if d.index not in self.choices:  # the role chunk; the response's first carries the prompt
            extra = {"prompt_token_ids": d.prompt_token_ids} \
                if self.token_ids and not self.choices and d.prompt_token_ids is not None else {}
            self.choice(d.index)
            yield self.chunk([{"index": d.index, "delta": {"role": "assistant", "content": ""},
                               "logprobs": None, "finish_reason": None}], **extra)
        choice = self.choices[d.index]
        for k, (tid, piece) in enumerate(choice.pieces(d)):
            body: dict[str, Any] = {"index": d.index, "delta": {"content": piece},
                                    "logprobs": None, "finish_reason": None}
            if tid is not None and self.logprobs and k < len(d.logprobs):
                top = d.top_logprobs[k] if d.top_logprobs else None
                body["logprobs"] = {"content": [self.text.entry(tid, d.logprobs[k], top)]}
            if tid is not None and self.token_ids:
                body["token_ids"] = [tid]
            yield self.chunk([body])
        if d.completion is not None:
            yield self.chunk([{"index": d.index, "delta": {}, "logprobs": None,
                               "finish_reason": _finish(d.completion)}])


class TextChunks(_Chunks):
    """``text_completion`` events (OpenAI's streaming legacy-completions shape)."""

    object_type, _prefix = "text_completion", "cmpl"

    def __init__(self, *args: Any, per_prompt: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.per_prompt = per_prompt

    def prompt_tokens(self) -> int:
        return sum(len(c.prompt_token_ids) for c in self._completions()[::self.per_prompt])

    def delta(self, d: TokenDelta) -> Iterator[bytes]:
        choice = self.choice(d.index)
        extra = {"prompt_token_ids": d.prompt_token_ids} \
            if self.token_ids and d.prompt_token_ids is not None else {}
        pieces = choice.pieces(d)
        at = len(choice.text) - sum(len(p) for _, p in pieces)  # where this delta's text starts
        for k, (tid, piece) in enumerate(pieces):
            body: dict[str, Any] = {"index": d.index, "text": piece, "logprobs": None,
                                    "finish_reason": None, **extra}
            extra = {}
            if tid is not None and self.logprobs and k < len(d.logprobs):
                tops = [d.top_logprobs[k]] if d.top_logprobs else None
                body["logprobs"] = self.text.text_entries([tid], [d.logprobs[k]], tops, offset=at)
            at += len(piece)
            if tid is not None and self.token_ids:
                body["token_ids"] = [tid]
            yield self.chunk([body])
        if d.completion is not None:
            yield self.chunk([{"index": d.index, "text": "", "logprobs": None,
                               "finish_reason": _finish(d.completion)}])


async def open_stream(state: ModelServerState, model: str,
                      build: Callable[[str | None], list[ChatRequest]],
                      chunks: _Chunks) -> StreamingResponse:
    """The SSE response of a streamed call; ``build(adapter)`` makes its engine requests.
    Errors before the first tokens raise as HTTP errors (module doc)."""
    events = _events(state, model, build, chunks)
    await anext(events)  # runs up to the first tokens
    return StreamingResponse(events, media_type="text/event-stream")


async def _events(state: ModelServerState, model: str,
                  build: Callable[[str | None], list[ChatRequest]],
                  chunks: _Chunks) -> AsyncIterator[bytes]:
    async with contextlib.AsyncExitStack() as stack:
        with http_errors():
            adapter = await stack.enter_async_context(state.served.use(model))
            deltas = state.deltas(build(adapter))
            stack.push_async_callback(deltas.aclose)
            first = await anext(deltas)
        yield b""  # primed: the caller now sends the response
        try:
            for event in chunks.delta(first):
                yield event
            async for d in deltas:
                for event in chunks.delta(d):
                    yield event
        except InferenceError as exc:  # the stream has started: report it in band
            yield sse(error_body(500, redact(f"generation failed: {exc}")))
            return
        for event in chunks.end():
            yield event
