"""The sections of Settings that configure infrastructure: bus, inference, gateway.

Each is the configuration of its component; the environment variable behind each field is
listed in :mod:`tentalis.config.variables`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from tentalis.config.paths import DEFAULT_MODEL

InferenceBackend = Literal["local", "openai", "ollama", "vllm"]
EmbeddedMode = Literal["auto", "always", "never"]
Device = Literal["auto", "cpu", "cuda"]


class BusConfig(BaseModel):
    """The NATS connection and the delivery policy of every durable consumer."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    url: str = Field(default="nats://127.0.0.1:4222", description="NATS server URL.")
    embedded: EmbeddedMode = Field(
        default="auto",
        description="auto: start an embedded nats-server when none answers at NATS_URL; "
        "always: always start one; never: fail if none answers.",
    )
    connect_timeout: float = Field(default=2.0, gt=0, description="Seconds to connect.")
    max_deliver: int = Field(default=5, ge=1, description="Deliveries before dead letter.")
    ack_wait_seconds: float = Field(
        default=120.0, gt=0, description="Seconds before an unacked message is redelivered."
    )
    stream_max_age_days: float = Field(
        default=7.0, gt=0, description="Days a stream keeps its messages."
    )


class InferenceConfig(BaseModel):
    """The workers' model and where it runs."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    model: str = Field(
        default=DEFAULT_MODEL,
        description="Model alias, local HF directory, or hub id (local backend); "
        "served model name (remote backends).",
    )
    backend: InferenceBackend = Field(default="local", description="Where the model runs.")
    base_url: str | None = Field(
        default=None, description="OpenAI-compatible base URL (openai/vllm backends)."
    )
    api_key: SecretStr | None = Field(default=None, description="Key of the remote backend.")
    device: Device = Field(default="auto", description="Local model: cpu, cuda or auto.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="Local model weights: auto = bfloat16 where the device "
        "multiplies it natively (CUDA bf16, AMX / AVX512-BF16 CPUs), else float32.")
    max_batch: int = Field(default=8, ge=1, description="Max sequences per batch.")
    batch_window_ms: float = Field(
        default=5.0, ge=0.0, le=1000.0,
        description="How long a local batch waits for more requests after the first one.")
    ollama_host: str = Field(
        default="http://localhost:11434", description="Ollama server (ollama backend)."
    )
    max_new_tokens: int = Field(default=192, ge=1, le=32768, description="Tokens per answer.")
    temperature: float = Field(default=0.7, ge=0.0, le=5.0, description="Sampling temperature.")

    def resolved_base_url(self) -> str | None:
        """The OpenAI-compatible base URL in effect (ollama's is derived from its host)."""
        if self.base_url:
            return self.base_url
        if self.backend == "ollama":
            return self.ollama_host.rstrip("/") + "/v1"
        return None


class GatewayConfig(BaseModel):
    """The HTTP servers (intercept proxy, bridge, model server) and their security."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    host: str = Field(
        default="127.0.0.1",
        description="Bind address of the gateway servers; a non-loopback one needs API keys.",
    )
    api_keys: SecretStr | None = Field(
        default=None, description="Comma-separated API keys (hashed at start-up)."
    )
    api_key_file: Path | None = Field(
        default=None,
        description="Hashed API key file (`tentalis keys add`); default <home>/gateway_keys "
        "when it exists.",
    )
    max_body_bytes: int = Field(default=4 << 20, ge=1024, description="Largest request body.")
    max_n: int = Field(default=8, ge=1, description="Largest n (choices) per request.")
    max_tokens: int = Field(default=4096, ge=1, description="Largest max_tokens per request.")
    max_messages: int = Field(default=256, ge=1, description="Most messages per request.")
    rate_limit_per_minute: int = Field(
        default=600, ge=0, description="Requests per minute per API key (0: unlimited)."
    )
    bridge_enabled: bool = Field(default=True, description="Run the bridge in `tentalis serve`.")
    bridge_port: int = Field(default=8100, ge=1, le=65535, description="Bridge port.")
    intercept_enabled: bool = Field(
        default=True, description="Run the intercept proxy in `tentalis serve`.")
    intercept_port: int = Field(default=8200, ge=1, le=65535, description="Proxy port.")
    intercept_backend_url: str | None = Field(
        default=None,
        description="OpenAI-compatible server the proxy forwards to (configuration only, "
        "never taken from a request). Unset: tentalis's own model server "
        "(http://127.0.0.1:MODEL_SERVER_PORT/v1).",
    )
    intercept_backend_api_key: SecretStr | None = Field(
        default=None, description="Key the proxy presents to its backend (never the client's)."
    )
    intercept_timeout_seconds: float = Field(default=600.0, gt=0, description="Per call.")
    intercept_training_data: bool = Field(
        default=True, description="The proxy asks its backend for token ids and logprobs on "
        "every trainable call and strips them from the answer when the client did not ask.")
    intercept_session_min_messages: int = Field(
        default=1, ge=1, description="Conversational (non-system) messages a call without "
        "X-Session-Id must share with a known session's messages to continue it.")
    intercept_side_turn_pattern: str | None = Field(
        default=None, description="Regular expression: a proxied call without a turn header "
        "whose system messages or last message match it is a side turn (not trained on), "
        "e.g. a compaction prompt's wording.")
    model_server_enabled: bool = Field(
        default=True, description="Run the model server in `tentalis serve`.")
    model_server_port: int = Field(default=8300, ge=1, le=65535, description="Model server port.")
    model_server_id: str = Field(
        default="model-server",
        description="The model server's id: its durable consumer of model updates, the "
        "target_worker that addresses it, and worker_id in its AdapterLoadedEvents.")
