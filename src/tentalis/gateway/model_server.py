"""The local model server: an :class:`InferenceClient` behind OpenAI's HTTP API.

Routes: ``GET /health`` (public), ``GET /v1/models``, ``POST /v1/chat/completions``,
``POST /v1/completions`` and vLLM's runtime LoRA endpoints ``POST /v1/load_lora_adapter``
/ ``POST /v1/unload_lora_adapter``, which take adapters from the adapter store only (see
:mod:`tentalis.gateway.served_adapters` for the names a request may use and the rule on
``lora_path``). Every route but ``/health`` needs an API key (:func:`secure`).

Streaming: the engine answers whole completions (it batches requests), so a streamed
response is sent once the completion is ready, one SSE chunk per token. The bytes on the
wire are what OpenAI's streaming clients expect; the time to first token equals the time
to the whole answer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from tentalis.errors import AdapterError, InferenceError
from tentalis.gateway import openai_render as render
from tentalis.gateway.openai_schema import (
    ChatCompletionRequest,
    CompletionRequest,
    Health,
    LoadLoraAdapterRequest,
    ModelCard,
    ModelList,
    UnloadLoraAdapterRequest,
)
from tentalis.gateway.security import SecurityConfig, check_caps, secure
from tentalis.gateway.served_adapters import AdapterNotFound, ServedAdapters
from tentalis.inference.adapters import AdapterStore
from tentalis.inference.base import ChatRequest, Completion, InferenceClient

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request or over a cap"},
    401: {"description": "Missing or invalid API key"},
    404: {"description": "Unknown model or adapter"},
    413: {"description": "Body too large"},
    429: {"description": "Rate limit exceeded"},
}


@contextlib.contextmanager
def _http_errors() -> Iterator[None]:
    """Domain errors → HTTP answers (the server keeps serving)."""
    try:
        yield
    except AdapterNotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except (AdapterError, InferenceError, ValueError) as exc:
        raise HTTPException(400, str(exc)) from None


def create_model_app(
    inference: InferenceClient,
    adapters: AdapterStore,
    security: SecurityConfig,
    *,
    default_max_tokens: int = 256,
) -> FastAPI:
    """The model server's app; ``app.state.served`` holds the :class:`ServedAdapters`."""
    app = FastAPI(title="tentalis model server", version="1",
                  summary="OpenAI-compatible API over the local engine, with runtime adapters.")
    served = ServedAdapters(inference, adapters)
    app.state.served = served
    text = render.TokenText(getattr(inference, "tokenizer", None))
    as_ids = render.TokenText(getattr(inference, "tokenizer", None), as_ids=True)

    async def generate(model: str, chats: list[list[dict[str, Any]]], n: int,
                       req: ChatCompletionRequest | CompletionRequest) -> list[Completion]:
        budget = req.token_budget() if isinstance(req, ChatCompletionRequest) else req.max_tokens
        with _http_errors():
            async with served.use(model) as adapter:
                requests = [
                    ChatRequest(
                        messages=chat,
                        max_tokens=budget or min(default_max_tokens, security.max_tokens),
                        temperature=1.0 if req.temperature is None else req.temperature,
                        top_p=1.0 if req.top_p is None else req.top_p,
                        adapter=adapter,
                        stop=tuple(req.stops()),
                        seed=None if req.seed is None else req.seed + i,
                        logprobs=True,
                    )
                    for chat in chats for i in range(n)
                ]
                return await inference.chat(requests)

    @app.get("/health", response_model=Health, tags=["health"])
    async def health() -> Health:
        """Liveness; the only route without an API key."""
        return Health(model=inference.model_name, adapters=served.model_ids()[1:])

    @app.get("/v1/models", response_model=ModelList, responses=_ERRORS, tags=["openai"])
    async def models() -> ModelList:
        """``base``, every loaded adapter name, and ``<name>@<version>`` of each version."""
        root = inference.model_name
        return ModelList(data=[ModelCard(id=m, root=root, parent=None if m == "base" else root)
                               for m in served.model_ids()])

    @app.post("/v1/chat/completions", responses=_ERRORS, tags=["openai"])
    async def chat_completions(req: ChatCompletionRequest) -> Any:
        """OpenAI chat completions, streamed (SSE) or not."""
        check_caps(req.n, req.token_budget(), req.messages, security)
        if req.top_logprobs:
            raise HTTPException(400, "top_logprobs > 0 is not supported (use logprobs)")
        with _http_errors():
            chat = [{"role": m.role, "content": m.text()} for m in req.messages]
        done = await generate(req.model, [chat], req.n, req)
        tokens = as_ids if req.return_tokens_as_token_ids else text
        if req.stream:
            include = bool(req.stream_options and req.stream_options.include_usage)
            return StreamingResponse(
                render.chat_chunks(req.model, done, tokens, logprobs=req.logprobs,
                                   token_ids=req.return_token_ids, include_usage=include),
                media_type="text/event-stream")
        return JSONResponse(render.chat_body(req.model, done, tokens, logprobs=req.logprobs,
                                             token_ids=req.return_token_ids))

    @app.post("/v1/completions", responses=_ERRORS, tags=["openai"])
    async def completions(req: CompletionRequest) -> Any:
        """OpenAI text completions; each prompt is sent as one user message."""
        prompts = req.prompts()
        check_caps(req.n * len(prompts), req.max_tokens, prompts, security)
        if req.echo:
            raise HTTPException(400, "echo is not supported")
        chats = [[{"role": "user", "content": p}] for p in prompts]
        done = await generate(req.model, chats, req.n, req)
        tokens = as_ids if req.return_tokens_as_token_ids else text
        if req.stream:
            include = bool(req.stream_options and req.stream_options.include_usage)
            return StreamingResponse(
                render.text_chunks(req.model, done, tokens, include_usage=include,
                                   per_prompt=req.n),
                media_type="text/event-stream")
        return JSONResponse(render.text_body(
            req.model, done, tokens, logprobs=req.logprobs is not None,
            token_ids=req.return_token_ids, per_prompt=req.n))

    @app.post("/v1/load_lora_adapter", response_class=PlainTextResponse, responses=_ERRORS,
              tags=["adapters"])
    async def load_lora_adapter(req: LoadLoraAdapterRequest) -> str:
        """Serve a store version as ``lora_name`` (loading a loaded name swaps it)."""
        with _http_errors():
            name, version = await served.load(req.lora_name, req.lora_path, req.sha256)
        return f"Success: LoRA adapter '{req.lora_name}' serves {name}@{version}."

    @app.post("/v1/unload_lora_adapter", response_class=PlainTextResponse, responses=_ERRORS,
              tags=["adapters"])
    async def unload_lora_adapter(req: UnloadLoraAdapterRequest) -> str:
        """Stop serving ``lora_name``; its weights go once its last request is answered."""
        with _http_errors():
            await served.unload(req.lora_name)
        return f"Success: LoRA adapter '{req.lora_name}' removed."

    secure(app, security)
    return app
