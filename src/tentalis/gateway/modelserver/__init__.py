"""The local model server: an :class:`InferenceClient` behind OpenAI's HTTP API.

Routes: ``GET /health`` (public), ``GET /v1/models``, ``GET /v1/models/{id}``,
``POST /v1/chat/completions``, ``POST /v1/completions`` and vLLM's runtime LoRA endpoints
``POST /v1/load_lora_adapter`` / ``POST /v1/unload_lora_adapter``, which take adapters
from the adapter store only (see :mod:`tentalis.inference.adapters.served` for the names
a request may use and the rule on ``lora_path``). Every route but ``/health`` needs an API
key (:func:`secure`).

Streaming: tokens leave as the engine decodes them, one SSE chunk per token, while the
request keeps its place in the engine's batch (:mod:`.streaming`); a client that
disconnects frees its row. An engine that cannot stream (a remote one) answers the whole
completion first, then its chunks.

Tool calling (``tools``, ``tool_choice``) and structured output (``response_format``):
:mod:`tentalis.gateway.modelserver.chat`.
"""

from __future__ import annotations

from tentalis.gateway.modelserver.app import create_model_app
from tentalis.gateway.modelserver.routes import model_server_state, router
from tentalis.gateway.modelserver.state import ModelServerState
from tentalis.gateway.modelserver.updates import ModelUpdateFollower

__all__ = ["ModelServerState", "ModelUpdateFollower", "create_model_app",
           "model_server_state", "router"]
