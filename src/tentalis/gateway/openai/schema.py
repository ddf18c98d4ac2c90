"""Pydantic models of the OpenAI-compatible requests the model server accepts.

Unknown request fields are ignored (clients send many optional ones), but every field we
act on is validated. Two extensions, spelled as vLLM spells them, so that tentalis's model
server and vLLM answer the same client code:

- ``return_token_ids: true`` → the response carries ``prompt_token_ids`` (top level) and
  ``token_ids`` (per choice; the completion's tokens, ending with EOS when the model
  stopped by itself). Streaming: the first chunk carries ``prompt_token_ids`` and each
  chunk's choice its ``token_ids``.
- ``return_tokens_as_token_ids: true`` → logprob entries name tokens ``token_id:<id>``.

Logprobs follow OpenAI's shapes: ``choices[i].logprobs.content[j] = {token, logprob,
bytes, top_logprobs}`` for chat; ``{tokens, token_logprobs, top_logprobs, text_offset}``
for completions. ``top_logprobs`` (chat, with ``logprobs: true``) and ``logprobs: N``
(completions) report the N most likely tokens at each position, N ≤ 20; more is a 400.

Tools and structured output (``tools``, ``tool_choice``, ``parallel_tool_calls``,
``response_format``; shapes in ``openai.tools``) are acted on by the model server
(``modelserver.chat``); the legacy ``functions`` / ``function_call`` are kept here only
to be refused.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tentalis.gateway.openai.tools import ResponseFormat, Tool, ToolCall, ToolChoice

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """One message of a chat; list content may hold only ``text`` parts."""

    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = Field(default=None, max_length=256)
    tool_calls: list[ToolCall] | None = Field(default=None, max_length=128)
    tool_call_id: str | None = Field(default=None, max_length=256)

    def text(self) -> str:
        """The message's text; raises ValueError for non-text parts (images, audio)."""
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        kinds = {p.type for p in self.content} - {"text"}
        if kinds:
            raise ValueError(f"only text content is supported, got {sorted(kinds)}")
        return "".join(p.text or "" for p in self.content)

    def engine_message(self) -> dict[str, Any]:
        """The message as the engine renders it (:mod:`tentalis.inference.tool_prompt`):
        role and text, and the earlier calls or the call a result answers."""
        out: dict[str, Any] = {"role": self.role, "content": self.text()}
        if self.tool_calls:
            out["tool_calls"] = [c.model_dump(include={"id", "type", "function"})
                                 for c in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None and self.role in ("tool", "function"):
            out["name"] = self.name
        return out


class StreamOptions(BaseModel):
    include_usage: bool = False


class _Sampling(BaseModel):
    """Fields chat and text completions share."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=300, description="`base`, `<adapter>` or "
                       "`<adapter>@<version>`; the base model's own name also works.")
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    n: int = Field(default=1, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    return_token_ids: bool = Field(
        default=False, description="tentalis/vLLM extension: return prompt and completion "
        "token ids (`prompt_token_ids`, `choices[i].token_ids`).")
    return_tokens_as_token_ids: bool = Field(
        default=False, description="vLLM extension: logprob tokens read `token_id:<id>`.")

    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class ChatCompletionRequest(_Sampling):
    """``POST /v1/chat/completions``."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, description="0..20 most likely "
                                     "tokens per position (needs `logprobs`); over 20 is a 400.")
    tools: list[Tool] | None = Field(default=None, max_length=128)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    functions: list[Any] | None = Field(default=None, description="Legacy; refused.")
    function_call: Any | None = Field(default=None, description="Legacy; refused.")

    def token_budget(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(_Sampling):
    """``POST /v1/completions``: each prompt is answered as one user message (the local
    engine always applies the model's chat template)."""

    prompt: str | list[str] = Field(min_length=1)
    max_tokens: int | None = Field(default=16, ge=1)
    logprobs: int | None = Field(default=None, ge=0, description="Logprobs of the chosen "
                                 "tokens and the 0..20 most likely at each position.")
    echo: bool = False

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


class LoadLoraAdapterRequest(BaseModel):
    """vLLM's runtime LoRA request. ``lora_path`` must name a version in the adapter store:
    ``<name>@<version>``, ``<name>@latest``, ``<name>`` (latest), ``<name>/v<version>``, or
    an absolute path that resolves to ``<store>/<name>/v<version>``."""

    model_config = ConfigDict(extra="ignore")

    lora_name: str = Field(min_length=1, max_length=128)
    lora_path: str = Field(min_length=1, max_length=4096)
    sha256: str | None = Field(default=None, description="If given, the version must match.")
    load_inplace: bool = False


class UnloadLoraAdapterRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    lora_name: str = Field(min_length=1, max_length=140)
    lora_int_id: int | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "tentalis"
    root: str | None = None
    parent: str | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    model: str
    adapters: list[str]


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}
