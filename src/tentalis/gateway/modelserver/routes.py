"""The model server's routes; their state comes through :func:`model_server_state`
(override it to mount the router alone)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from tentalis.gateway.modelserver.chat import answer_chat, needs_engine_support, plan_chat
from tentalis.gateway.modelserver.state import ModelServerState, http_errors
from tentalis.gateway.modelserver.streaming import ChatChunks, TextChunks, open_stream
from tentalis.gateway.openai import render
from tentalis.gateway.openai.replies import tool_chunks
from tentalis.gateway.openai.schema import (
    ChatCompletionRequest,
    CompletionRequest,
    Health,
    LoadLoraAdapterRequest,
    ModelCard,
    ModelList,
    UnloadLoraAdapterRequest,
)
from tentalis.gateway.security import check_caps
from tentalis.inference.base import MAX_TOP_LOGPROBS

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request or over a cap"},
    401: {"description": "Missing or invalid API key"},
    404: {"description": "Unknown model or adapter"},
    413: {"description": "Body too large"},
    429: {"description": "Rate limit exceeded"},
}


def model_server_state(request: Request) -> ModelServerState:
    """The app's :class:`ModelServerState` (``app.state.model_server``)."""
    return request.app.state.model_server  # type: ignore[no-any-return]


State = Annotated[ModelServerState, Depends(model_server_state)]

router = APIRouter()


@router.get("/health", response_model=Health, tags=["health"])
async def health(state: State) -> Health:
    """Liveness; the only route without an API key."""
    return Health(model=state.inference.model_name, adapters=state.served.model_ids()[1:])


@router.get("/v1/models", response_model=ModelList, responses=_ERRORS, tags=["openai"])
async def models(state: State) -> ModelList:
    """``base``, every loaded adapter name, and ``<name>@<version>`` of each version."""
    root = state.inference.model_name
    return ModelList(data=[ModelCard(id=m, root=root, parent=None if m == "base" else root)
                           for m in state.served.model_ids()])


@router.get("/v1/models/{model_id:path}", response_model=ModelCard, responses=_ERRORS,
            tags=["openai"])
async def model(model_id: str, state: State) -> ModelCard:
    """One model a request may name (404 for any other)."""
    with http_errors():
        key = state.served.resolve_model(model_id)
    root = state.inference.model_name
    return ModelCard(id=model_id, root=root, parent=None if key is None else root)


def _check_top(n: int | None, field: str) -> None:
    if n is not None and n > MAX_TOP_LOGPROBS:
        raise HTTPException(400, f"{field}={n} is over the maximum of {MAX_TOP_LOGPROBS}")


@router.post("/v1/chat/completions", responses=_ERRORS, tags=["openai"])
async def chat_completions(req: ChatCompletionRequest, state: State) -> Any:
    """OpenAI chat completions, streamed (SSE) or not; with tools and structured output
    (:mod:`~tentalis.gateway.modelserver.chat`)."""
    check_caps(req.n, req.token_budget(), req.messages, state.security)
    _check_top(req.top_logprobs, "top_logprobs")
    if req.top_logprobs and not req.logprobs:
        raise HTTPException(400, "top_logprobs needs logprobs=true")
    plan = plan_chat(req)
    needs_engine_support(plan, state.inference)
    with http_errors():
        chat = [m.engine_message() for m in req.messages]
    tokens = state.as_ids if req.return_tokens_as_token_ids else state.text
    include = bool(req.stream_options and req.stream_options.include_usage)
    if req.stream and not plan.names:  # text, or JSON under its grammar: token by token
        return await open_stream(
            state, req.model,
            lambda adapter: state.requests([chat], req.n, req, adapter,
                                           constraint=plan.constraint),
            ChatChunks(req.model, tokens, logprobs=req.logprobs,
                       token_ids=req.return_token_ids, include_usage=include))
    done, replies = await answer_chat(state, req, plan, chat)
    if req.stream:  # calls are known once whole: sent when complete
        return StreamingResponse(
            tool_chunks(req.model, done, replies, tokens, logprobs=req.logprobs,
                        token_ids=req.return_token_ids, include_usage=include),
            media_type="text/event-stream")
    return JSONResponse(render.chat_body(req.model, done, tokens, logprobs=req.logprobs,
                                         token_ids=req.return_token_ids, replies=replies))


@router.post("/v1/completions", responses=_ERRORS, tags=["openai"])
async def completions(req: CompletionRequest, state: State) -> Any:
    """OpenAI text completions; each prompt is sent as one user message."""
    prompts = req.prompts()
    check_caps(req.n * len(prompts), req.max_tokens, prompts, state.security)
    _check_top(req.logprobs, "logprobs")
    if req.echo:
        raise HTTPException(400, "echo is not supported")
    chats = [[{"role": "user", "content": p}] for p in prompts]
    tokens = state.as_ids if req.return_tokens_as_token_ids else state.text
    if req.stream:
        include = bool(req.stream_options and req.stream_options.include_usage)
        return await open_stream(
            state, req.model, lambda adapter: state.requests(chats, req.n, req, adapter),
            TextChunks(req.model, tokens, logprobs=req.logprobs is not None,
                       token_ids=req.return_token_ids, include_usage=include,
                       per_prompt=req.n))
    done = await state.generate(req.model, chats, req.n, req)
    return JSONResponse(render.text_body(
        req.model, done, tokens, logprobs=req.logprobs is not None,
        token_ids=req.return_token_ids, per_prompt=req.n))


@router.post("/v1/load_lora_adapter", response_class=PlainTextResponse, responses=_ERRORS,
             tags=["adapters"])
async def load_lora_adapter(req: LoadLoraAdapterRequest, state: State) -> str:
    """Serve a store version as ``lora_name`` (loading a loaded name swaps it)."""
    with http_errors():
        name, version = await state.served.load(req.lora_name, req.lora_path, req.sha256)
    return f"Success: LoRA adapter '{req.lora_name}' serves {name}@{version}."


@router.post("/v1/unload_lora_adapter", response_class=PlainTextResponse, responses=_ERRORS,
             tags=["adapters"])
async def unload_lora_adapter(req: UnloadLoraAdapterRequest, state: State) -> str:
    """Stop serving ``lora_name``; its weights go once its last request is answered."""
    with http_errors():
        await state.served.unload(req.lora_name)
    return f"Success: LoRA adapter '{req.lora_name}' removed."
