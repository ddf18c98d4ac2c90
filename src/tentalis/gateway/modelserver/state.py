"""``ModelServerState``: the engine, its served adapters and the limits the routes share."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Iterator
from typing import Any

from fastapi import HTTPException

from tentalis.errors import AdapterError, InferenceError
from tentalis.gateway.openai import render
from tentalis.gateway.openai.schema import ChatCompletionRequest, CompletionRequest
from tentalis.gateway.security import SecurityConfig
from tentalis.inference.adapters import AdapterNotFound, AdapterStore, ServedAdapters
from tentalis.inference.base import (
    ChatRequest,
    Completion,
    InferenceClient,
    OutputConstraint,
    StreamingInference,
    TokenDelta,
)


@contextlib.contextmanager
def http_errors() -> Iterator[None]:
    """Domain errors → HTTP answers (the server keeps serving)."""
    try:
        yield
    except AdapterNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except (AdapterError, InferenceError, ValueError) as exc:
        raise HTTPException(400, str(exc)) from None


class ModelServerState:
    """What the model server's routes use: engine, served adapters, caps, token text."""

    def __init__(self, inference: InferenceClient, adapters: AdapterStore,
                 security: SecurityConfig, *, default_max_tokens: int = 256) -> None:
        self.inference = inference
        self.served = ServedAdapters(inference, adapters)
        self.security = security
        self.default_max_tokens = default_max_tokens
        self.text = render.TokenText(getattr(inference, "tokenizer", None))
        self.as_ids = render.TokenText(getattr(inference, "tokenizer", None), as_ids=True)

    def requests(self, chats: list[list[dict[str, Any]]], n: int,
                 req: ChatCompletionRequest | CompletionRequest, adapter: str | None, *,
                 tools: tuple[dict[str, Any], ...] = (),
                 constraint: OutputConstraint | None = None) -> list[ChatRequest]:
        """The engine requests of a call: ``n`` of each chat, on the engine's ``adapter``."""
        if isinstance(req, ChatCompletionRequest):
            budget, top = req.token_budget(), req.top_logprobs or 0
        else:
            budget, top = req.max_tokens, req.logprobs or 0
        return [
            ChatRequest(
                messages=chat,
                max_tokens=budget or min(self.default_max_tokens, self.security.max_tokens),
                temperature=1.0 if req.temperature is None else req.temperature,
                top_p=1.0 if req.top_p is None else req.top_p,
                adapter=adapter,
                stop=tuple(req.stops()),
                seed=None if req.seed is None else req.seed + i,
                logprobs=True,
                top_logprobs=top,
                tools=tools,
                constraint=constraint,
            )
            for chat in chats for i in range(n)
        ]

    async def generate(self, model: str, chats: list[list[dict[str, Any]]], n: int,
                       req: ChatCompletionRequest | CompletionRequest, *,
                       tools: tuple[dict[str, Any], ...] = (),
                       constraint: OutputConstraint | None = None) -> list[Completion]:
        """``n`` completions of each chat with the version ``model`` names (``tools``
        rendered into the prompt, decoded under ``constraint``)."""
        with http_errors():
            async with self.served.use(model) as adapter:
                return await self.inference.chat(self.requests(
                    chats, n, req, adapter, tools=tools, constraint=constraint))

    async def deltas(self, requests: list[ChatRequest]) -> AsyncGenerator[TokenDelta, None]:
        """The requests' tokens as the engine decodes them; an engine that cannot stream
        answers each request in one delta."""
        if not isinstance(self.inference, StreamingInference):
            for i, c in enumerate(await self.inference.chat(requests)):
                yield TokenDelta(i, list(c.completion_token_ids), list(c.logprobs or []),
                                 c.top_logprobs, list(c.prompt_token_ids), completion=c)
            return
        source = self.inference.stream(requests)
        try:
            async for delta in source:
                yield delta
        finally:
            close = getattr(source, "aclose", None)
            if close is not None:
                await close()  # ends the rows still decoding
