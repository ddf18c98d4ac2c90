"""The agents' sections of Settings: :class:`WorkerConfig` and :class:`ManagerConfig`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ReviewMode = Literal["rules", "llm"]


class WorkerConfig(BaseModel):
    """How a worker answers tasks.

    In Settings, ``batch_size``, ``max_new_tokens``, ``temperature``, ``max_deliver``,
    ``ack_wait`` and ``seed`` come from the inference and bus sections and TENTALIS_SEED
    (see ``Settings._link_sections``).
    """

    model_config = ConfigDict(extra="forbid", validate_default=True)

    worker_id: str = Field(default="worker-01", description="This worker's id.")
    environments: Sequence[str] = Field(
        default=("math",),
        description="Environments a worker subscribes to (comma-separated in the variable).",
    )
    batch_size: int = Field(default=8, ge=1, description="Tasks answered in one generation.")
    max_new_tokens: int = Field(default=192, ge=1, description="Tokens per answer.")
    temperature: float = Field(default=0.7, ge=0.0, description="Sampling temperature.")
    max_deliver: int = Field(default=5, ge=1, description="Deliveries before a task fails.")
    ack_wait: float = Field(default=120.0, gt=0, description="Seconds before redelivery.")
    adapter: str | None = Field(default=None, description="Adapter to answer with at start.")
    follow_adapter: str = Field(
        default="policy",
        description="Adapter name whose published versions workers hot-swap to (updates "
        "to other adapter names are not for this worker).",
    )
    seed: int | None = Field(default=None, description="Seeds sampling per task; None: random.")

    @field_validator("environments", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(e.strip() for e in value.split(",") if e.strip())
        return tuple(value) if isinstance(value, list) else value


class ManagerConfig(BaseModel):
    """How the manager publishes tasks and reviews their results."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    manager_id: str = Field(default="manager-01", description="This manager's id.")
    task_timeout: float = Field(
        default=120.0, gt=0, description="From publishing a task to its feedback (CPU-sized)."
    )
    max_in_flight: int = Field(default=8, ge=1, description="Tasks outstanding at once.")
    max_subtasks: int = Field(default=4, ge=1, description="Tasks one request splits into.")
    environment: str = Field(default="math", description="Environment of a request's tasks.")
    review: ReviewMode = Field(
        default="rules", description="rules: feedback from the scores; llm: the model writes it."
    )
