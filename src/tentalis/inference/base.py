"""The ``InferenceClient`` protocol: chat messages in; text, token ids and logprobs out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Message = dict[str, Any]  # {"role", "content"} (+ "tool_calls", "tool_call_id", "name")

BASE_ADAPTER = "base"
MAX_TOP_LOGPROBS = 20  # the most alternatives per position a request may ask for (OpenAI's cap)


@dataclass(frozen=True)
class OutputConstraint:
    """What a completion must be, enforced while decoding (the local engine masks the
    tokens that would break it, :mod:`tentalis.inference.grammar`): ``prefix``, then JSON
    matching ``json_schema`` (JSON Schema as text; None = any JSON object), then
    ``suffix``, then the end of the sequence."""

    json_schema: str | None = None
    prefix: str = ""
    suffix: str = ""


@dataclass(frozen=True)
class ChatRequest:
    """One generation request.

    ``adapter`` names a loaded LoRA adapter (``"base"`` or None = no adapter).
    ``temperature == 0`` means greedy decoding. ``seed`` makes sampling reproducible.
    ``tools`` (OpenAI tool definitions) are rendered into the prompt
    (:mod:`tentalis.inference.tool_prompt`); ``constraint`` restricts what is decoded.
    Engines without them (``supports_structured_output`` false) refuse both.
    ``top_logprobs``: how many of the most likely tokens (0..20) to report at each position.
    """

    messages: Sequence[Message]
    max_tokens: int = 192
    temperature: float = 0.7
    top_p: float = 1.0
    adapter: str | None = None
    stop: Sequence[str] = ()
    seed: int | None = None
    logprobs: bool = True
    tools: Sequence[dict[str, Any]] = ()
    constraint: OutputConstraint | None = None
    top_logprobs: int = 0


TopLogprobs = list[tuple[int, float]]  # (token id, logprob), most likely first


@dataclass
class Completion:
    """What one request produced."""

    text: str
    completion_token_ids: list[int] = field(default_factory=list)
    prompt_token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] | None = None
    top_logprobs: list[TopLogprobs] | None = None  # per completion token, when asked
    finish_reason: str = "stop"  # "stop" | "length"
    adapter: str | None = None
    model: str = ""
    latency_s: float = 0.0

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


@dataclass
class TokenDelta:
    """Tokens of request ``index`` of a streamed call that the engine will not take back.

    Concatenated in order, a request's deltas give its ``completion_token_ids`` (and
    ``logprobs``, ``top_logprobs``); its last delta carries the finished
    :class:`Completion`, whose ``text`` is authoritative. ``prompt_token_ids`` comes
    with a request's first delta."""

    index: int
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    top_logprobs: list[TopLogprobs] | None = None
    prompt_token_ids: list[int] | None = None
    completion: Completion | None = None
    text: str | None = None  # the text these tokens add, when the engine says (remote ones)


@runtime_checkable
class StreamingInference(Protocol):
    """An engine that hands out each request's tokens as they are decoded."""

    def stream(self, requests: Sequence[ChatRequest]) -> AsyncIterator[TokenDelta]:
        """Deltas of every request, interleaved as the engine produces them; closing the
        iterator early cancels the requests still running (their rows are freed)."""
        ...


@runtime_checkable
class InferenceClient(Protocol):
    """A model that answers batches of chat requests, with LoRA adapters by name."""

    model_name: str

    async def chat(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        """Answer every request; the i-th completion answers the i-th request."""
        ...

    async def load_adapter(self, name: str, path: str) -> None:
        """Load (or replace) adapter ``name`` from a directory, without restarting."""
        ...

    async def unload_adapter(self, name: str) -> None: ...

    def adapters(self) -> list[str]: ...

    async def close(self) -> None: ...
