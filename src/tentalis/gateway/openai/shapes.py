"""The OpenAI request and response shapes the proxy declares in its OpenAPI schema.

They check what the proxy itself relies on (a model name, a message list, a prompt, the
caps) and let every other field through untouched (``extra="allow"``), so a backend's own
extensions (vLLM's ``return_tokens_as_token_ids``, ``top_k`` …) still reach it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Body fields some proxies read to pick the upstream per request. The upstream comes from
# configuration only, so a request naming one is refused rather than silently ignored.
REDIRECT_FIELDS = frozenset(
    {"api_base", "base_url", "api_url", "upstream", "upstream_url", "endpoint", "backend_url"}
)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str = Field(min_length=1, max_length=64)
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions`` (fields beyond these are forwarded as they are)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=256)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    n: int | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    logprobs: bool | None = None


class CompletionRequest(BaseModel):
    """``POST /v1/completions`` (legacy text completions)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=256)
    prompt: str | list[str] = Field(min_length=1)
    stream: bool = False
    n: int | None = None
    max_tokens: int | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    logprobs: int | None = None


class OpenAIResponse(BaseModel):
    """A completion as the backend returned it (documented loosely: passed through)."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    object: str | None = None
    model: str | None = None
    choices: list[dict[str, Any]] = Field(default_factory=list)


class ModelList(BaseModel):
    model_config = ConfigDict(extra="allow")

    object: Literal["list"] = "list"
    data: list[dict[str, Any]] = Field(default_factory=list)


class ErrorDetail(BaseModel):
    message: str
    type: str
    code: int | str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error shape."""

    model_config = ConfigDict(extra="allow")

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": why}
    for code, why in (
        (400, "Invalid request (caps, session headers, upstream redirect)"),
        (401, "Missing or invalid API key"),
        (413, "Request body too large"),
        (422, "Body does not match the schema"),
        (429, "Rate limited (see Retry-After)"),
        (502, "The configured backend failed or could not be reached"),
        (504, "The configured backend did not answer in time"),
    )
}


SSE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One Server-Sent Event: `data` is a JSON chunk, or `[DONE]` at the end.",
    "properties": {"event": {"type": "string"}, "data": {"type": "string"},
                   "id": {"type": "string"}},
    "required": ["data"],
}
