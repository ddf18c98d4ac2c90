"""The judge's section of Settings: :class:`JudgeConfig` (where the judge runs, how it asks)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from tentalis.config.sections import InferenceBackend

Aggregate = Literal["vote", "mean"]


class JudgeConfig(BaseModel):
    """How the judge asks and aggregates. ``temperature`` applies to every vote except the
    first round of a single-vote judge, which decodes greedily.

    ``backend``, ``base_url`` and ``model`` say where the judge runs (the judge factory
    reads them; the scorer itself is handed a client). In Settings, ``seed`` comes from
    TENTALIS_SEED.
    """

    backend: InferenceBackend = Field(
        default="local", description="Where the judge runs (as INFERENCE_BACKEND)."
    )
    base_url: str | None = Field(
        default=None, description="OpenAI-compatible base URL of the judge (remote backends)."
    )
    model: str | None = Field(default=None, description="Judge model (default LLM_MODEL).")
    votes: int = Field(default=1, ge=1, le=16, description="Judgements per item (m).")
    aggregate: Aggregate = Field(
        default="vote", description="vote: majority of m votes; mean: their mean."
    )
    max_retries: int = Field(
        default=2, ge=0, le=5, description="Extra rounds for malformed judgements."
    )
    temperature: float = Field(default=0.7, ge=0.0, le=2.0, description="Sampling temperature.")
    max_tokens: int = Field(default=24, ge=2, le=256, description="Tokens per judgement.")
    seed: int = Field(default=0, description="Seeds the votes.")
    max_requests_per_call: int | None = Field(
        default=None, ge=1, description="Split a batch's requests into chat calls of this size."
    )
    adapter: str | None = Field(default=None, description="Judge with this LoRA adapter.")
