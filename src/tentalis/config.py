"""Settings: every environment variable tentalis reads, in one place.

Precedence, highest first: explicit keyword arguments (the CLI), environment variables,
the TOML config file (``$TENTALIS_CONFIG``, else ``$TENTALIS_HOME/config.toml``), defaults.
Environment variables carry the field name in upper case (``NATS_URL``, ``LLM_MODEL`` …);
in the TOML file the same names are written in lower case.

An invalid value fails at start-up with a :class:`~tentalis.errors.ConfigError` that names
the variable and what it accepts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from tentalis.errors import ConfigError

InferenceBackend = Literal["local", "openai", "ollama", "vllm"]
TrainerBackend = Literal["standalone", "openrlhf"]
EmbeddedMode = Literal["auto", "always", "never"]
Device = Literal["auto", "cpu", "cuda"]
ReviewMode = Literal["rules", "llm"]

DEFAULT_MODEL = "smollm2-135m-instruct"


def default_home() -> Path:
    """Where tentalis keeps its state: ``$TENTALIS_HOME`` or ``~/.tentalis``."""
    return Path(os.environ.get("TENTALIS_HOME") or Path.home() / ".tentalis").expanduser()


def config_file_path() -> Path:
    """The TOML config file: ``$TENTALIS_CONFIG`` or ``<home>/config.toml``."""
    explicit = os.environ.get("TENTALIS_CONFIG")
    return Path(explicit).expanduser() if explicit else default_home() / "config.toml"


class Settings(BaseSettings):
    """Runtime configuration of every tentalis service."""

    model_config = SettingsConfigDict(
        env_prefix="",
        case_sensitive=False,
        extra="ignore",
        validate_default=True,
    )

    # --- where things live -------------------------------------------------------------
    tentalis_home: Path = Field(default_factory=default_home, description="State directory.")
    tentalis_store: Path | None = Field(
        default=None, description="SQLite experience ledger (default <home>/experience.db)."
    )
    tentalis_seed: int = Field(default=0, description="Seed for task suites and sampling.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # --- bus ---------------------------------------------------------------------------
    nats_url: str = Field(default="nats://127.0.0.1:4222", description="NATS server URL.")
    nats_embedded: EmbeddedMode = Field(
        default="auto",
        description="auto: start an embedded nats-server when none answers at NATS_URL; "
        "always: always start one; never: fail if none answers.",
    )
    nats_connect_timeout: float = Field(default=2.0, gt=0)
    bus_max_deliver: int = Field(default=5, ge=1, description="Deliveries before dead letter.")
    bus_ack_wait_seconds: float = Field(default=120.0, gt=0)
    bus_stream_max_age_days: float = Field(default=7.0, gt=0)

    # --- inference ---------------------------------------------------------------------
    llm_model: str = Field(
        default=DEFAULT_MODEL,
        description="Model alias, local HF directory, or hub id (local backend); "
        "served model name (remote backends).",
    )
    inference_backend: InferenceBackend = "local"
    inference_base_url: str | None = Field(
        default=None, description="OpenAI-compatible base URL (openai/vllm backends)."
    )
    inference_api_key: SecretStr | None = None
    inference_device: Device = "auto"
    inference_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="Local model weights: auto = bfloat16 where the device "
        "multiplies it natively (CUDA bf16, AMX / AVX512-BF16 CPUs), else float32.")
    inference_max_batch: int = Field(default=8, ge=1, description="Max sequences per batch.")
    inference_batch_window_ms: float = Field(
        default=5.0, ge=0.0, le=1000.0,
        description="How long a local batch waits for more requests after the first one.")
    ollama_host: str = "http://localhost:11434"
    max_new_tokens: int = Field(default=192, ge=1, le=32768)
    temperature: float = Field(default=0.7, ge=0.0, le=5.0)

    # --- judge (the LLM that scores steps, tentalis.rewards.judge) ------------------------
    judge_backend: InferenceBackend = Field(
        default="local", description="Where the judge runs (as INFERENCE_BACKEND)."
    )
    judge_base_url: str | None = Field(
        default=None, description="OpenAI-compatible base URL of the judge (remote backends)."
    )
    judge_model: str | None = Field(default=None, description="Judge model (default LLM_MODEL).")
    judge_votes: int = Field(default=1, ge=1, le=16, description="Judgements per step (m).")
    judge_aggregate: Literal["vote", "mean"] = Field(
        default="vote", description="vote: majority of m votes; mean: their mean."
    )
    judge_max_retries: int = Field(default=2, ge=0, le=5, description="Re-asks when malformed.")

    # --- agents ------------------------------------------------------------------------
    manager_id: str = "manager-01"
    worker_id: str = "worker-01"
    worker_environments: str = Field(
        default="math", description="Comma-separated environments a worker subscribes to."
    )
    worker_adapter: str = Field(
        default="policy",
        description="Adapter name whose published versions workers hot-swap to.",
    )
    task_timeout_seconds: float = Field(
        default=120.0, gt=0, description="From publishing a task to its feedback (CPU-sized)."
    )
    manager_review: ReviewMode = Field(
        default="rules", description="rules: feedback from the scores; llm: the model writes it."
    )
    manager_max_in_flight: int = Field(default=8, ge=1)

    # --- training ----------------------------------------------------------------------
    trainer_backend: TrainerBackend = "standalone"
    training_clip_epsilon_high: float = Field(default=0.28, ge=0.0)

    # --- reward-hacking guard (meaning of each: tentalis.rewards.guard.GuardConfig) -----
    guard_enabled: bool = Field(default=True, description="Watch training for reward hacking.")
    guard_warmup: int = Field(default=64, ge=4, description="Rollouts in the baseline.")
    guard_window: int = Field(default=64, ge=4, description="Recent rollouts per check.")
    guard_check_every: int = Field(default=16, ge=1, description="Rollouts between checks.")
    guard_length_z: float = Field(default=2.5, gt=0, description="Length drift, baseline σ.")
    guard_kl_threshold: float = Field(default=0.15, gt=0, description="Reward KL, nats.")
    guard_kl_rising_checks: int = Field(default=3, ge=1, description="Checks KL must rise.")
    guard_judge_component: str = Field(default="judge", description="Judge's component.")
    guard_cheap_component: str = Field(
        default="", description="Cheap scorer's component; empty: mean of the others."
    )
    guard_gap_threshold: float = Field(default=0.25, gt=0, description="|cheap − judge| rise.")
    guard_rho_drop: float = Field(default=0.5, gt=0, description="Spearman ρ drop.")
    guard_min_pairs: int = Field(default=16, ge=4, description="Pairs to judge divergence.")
    guard_hard_stop_signals: int = Field(default=2, ge=1, description="Signals for HARD_STOP.")
    guard_escalate_after: int = Field(default=0, ge=0, description="Checks; 0: never.")

    # --- gateway -----------------------------------------------------------------------
    bridge_port: int = Field(default=8100, ge=1, le=65535)
    intercept_enabled: bool = Field(
        default=True, description="Run the intercept proxy in `tentalis serve`.")
    intercept_port: int = Field(default=8200, ge=1, le=65535)
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
    bridge_enabled: bool = Field(default=True, description="Run the bridge in `tentalis serve`.")
    model_server_enabled: bool = Field(
        default=True, description="Run the model server in `tentalis serve`.")
    model_server_port: int = Field(default=8300, ge=1, le=65535)
    model_server_id: str = Field(
        default="model-server",
        description="The model server's id: its durable consumer of model updates, the "
        "target_worker that addresses it, and worker_id in its AdapterLoadedEvents.")
    gateway_host: str = Field(
        default="127.0.0.1",
        description="Bind address of the gateway servers; a non-loopback one needs API keys.",
    )
    gateway_api_keys: SecretStr | None = Field(
        default=None, description="Comma-separated API keys (hashed at start-up)."
    )
    gateway_api_key_file: Path | None = Field(
        default=None,
        description="Hashed API key file (`tentalis keys add`); default <home>/gateway_keys "
        "when it exists.",
    )
    gateway_max_body_bytes: int = Field(default=4 << 20, ge=1024)
    gateway_max_n: int = Field(default=8, ge=1)
    gateway_max_tokens: int = Field(default=4096, ge=1)
    gateway_max_messages: int = Field(default=256, ge=1)
    gateway_rate_limit_per_minute: int = Field(
        default=600, ge=0, description="Requests per minute per API key (0: unlimited)."
    )

    # --- on-policy distillation & meta-RL (used by later stages) ------------------------
    opd_mode: Literal["lightweight", "openclaw"] = "lightweight"
    opd_teacher_model: str = DEFAULT_MODEL
    opd_join_timeout: float = Field(default=30.0, gt=0)
    opd_weight: float = Field(default=0.3, ge=0.0)
    rl_weight: float = Field(default=0.7, ge=0.0)
    meta_rl_enabled: bool = False
    meta_rl_window_size: int = Field(default=200, ge=1)

    # --- alignment (used by later stages) ----------------------------------------------
    alignment_enabled: bool = False
    alignment_results_dir: Path = Path("alignment_results")
    alignment_audit_all: bool = False

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        self.tentalis_home = self.tentalis_home.expanduser()
        if self.tentalis_store is None:
            self.tentalis_store = self.tentalis_home / "experience.db"
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file_path())
        return (init_settings, env_settings, toml)

    # --- derived -----------------------------------------------------------------------
    @property
    def store_path(self) -> Path:
        assert self.tentalis_store is not None
        return self.tentalis_store

    @property
    def environments(self) -> list[str]:
        return [e.strip() for e in self.worker_environments.split(",") if e.strip()]

    def resolved_inference_base_url(self) -> str | None:
        if self.inference_base_url:
            return self.inference_base_url
        if self.inference_backend == "ollama":
            return self.ollama_host.rstrip("/") + "/v1"
        return None

    def to_toml_dict(self) -> dict[str, Any]:
        """The settings as written by ``tentalis init`` (secrets left out)."""
        secrets = {"inference_api_key", "gateway_api_keys", "intercept_backend_api_key"}
        data = self.model_dump(mode="json", exclude=secrets)
        return {k: v for k, v in data.items() if v is not None}


def _describe(error: dict[str, Any]) -> str:
    field = ".".join(str(p) for p in error.get("loc", ())) or "settings"
    value = error.get("input")
    ctx = error.get("ctx") or {}
    allowed = ctx.get("expected")
    msg = f"{field.upper()}={value!r} is invalid: {error.get('msg')}"
    if allowed:
        msg += f" (allowed: {allowed})"
    return msg


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings`, turning validation failures into a readable ConfigError."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except ValidationError as exc:
        lines = [_describe(dict(e)) for e in exc.errors()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
