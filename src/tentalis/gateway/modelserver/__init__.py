"""The local model server: an :class:`InferenceClient` behind OpenAI's HTTP API.

Routes: ``GET /health`` (public), ``GET /v1/models``, ``POST /v1/chat/completions``,
``POST /v1/completions`` and vLLM's runtime LoRA endpoints ``POST /v1/load_lora_adapter``
/ ``POST /v1/unload_lora_adapter``, which take adapters from the adapter store only (see
:mod:`tentalis.inference.adapters.served` for the names a request may use and the rule on
``lora_path``). Every route but ``/health`` needs an API key (:func:`secure`).

Tool calling (``tools``, ``tool_choice``) and structured output (``response_format``):
:mod:`tentalis.gateway.modelserver.chat`.

Streaming: the engine answers whole completions (it batches requests), so a streamed
response is sent once the completion is ready, one SSE chunk per token. The bytes on the
wire are what OpenAI's streaming clients expect; the time to first token equals the time
to the whole answer.
"""

from __future__ import annotations

from tentalis.gateway.modelserver.app import create_model_app
from tentalis.gateway.modelserver.routes import model_server_state, router
from tentalis.gateway.modelserver.state import ModelServerState
from tentalis.gateway.modelserver.updates import ModelUpdateFollower

__all__ = ["ModelServerState", "ModelUpdateFollower", "create_model_app",
           "model_server_state", "router"]
