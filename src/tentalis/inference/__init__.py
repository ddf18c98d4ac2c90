"""tentalis.inference: the InferenceClient protocol and its implementations.

``LocalInference`` (transformers + peft, imported lazily because it pulls in torch) and
``OpenAIInference`` (any OpenAI-compatible server); ``create_inference`` picks one from
the settings; ``AdapterStore`` keeps versioned LoRA adapters on disk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tentalis.inference.adapters import AdapterStore, AdapterVersion, validate_adapter_name
from tentalis.inference.base import (
    BASE_ADAPTER,
    ChatRequest,
    Completion,
    InferenceClient,
    Message,
    StreamingInference,
    TokenDelta,
)
from tentalis.inference.factory import create_inference

if TYPE_CHECKING:
    from tentalis.inference.local import LocalInference
    from tentalis.inference.openai import OpenAIInference

__all__ = [
    "BASE_ADAPTER",
    "AdapterStore",
    "AdapterVersion",
    "ChatRequest",
    "Completion",
    "InferenceClient",
    "LocalInference",
    "Message",
    "OpenAIInference",
    "StreamingInference",
    "TokenDelta",
    "create_inference",
    "validate_adapter_name",
]


def __getattr__(name: str) -> Any:
    if name == "LocalInference":
        from tentalis.inference.local import LocalInference

        return LocalInference
    if name == "OpenAIInference":
        from tentalis.inference.openai import OpenAIInference

        return OpenAIInference
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
