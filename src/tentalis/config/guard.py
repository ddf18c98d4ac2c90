"""``GuardConfig``: the reward-hacking guard's thresholds, each documented once here.

It is the ``guard`` section of Settings (``settings.guard``), read from the ``GUARD_*``
variables (:mod:`tentalis.config.variables`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class GuardConfig(BaseModel):
    """When the guard checks, and what counts as drift."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(default=True, description="Watch training signals at all.")
    warmup: int = Field(
        default=64, ge=4,
        description="Rollouts observed before the first check; they form the baseline.",
    )
    window: int = Field(
        default=64, ge=4, description="Most recent rollouts compared against the baseline."
    )
    check_every: int = Field(default=16, ge=1, description="Rollouts between two checks.")
    length_z_threshold: float = Field(
        default=2.5, gt=0,
        description="Length drift fires when the window's mean completion length is this many "
        "baseline standard deviations above the baseline mean (longer only).",
    )
    kl_threshold: float = Field(
        default=0.15, gt=0,
        description="Reward-distribution drift fires when KL(baseline ‖ window), in nats, is "
        "above this at each of the last kl_rising_checks checks and never fell between them.",
    )
    kl_rising_checks: int = Field(default=3, ge=1, description="Consecutive checks for KL.")
    kl_bins: int = Field(default=10, ge=2, description="Histogram bins over [0, 1].")
    kl_smoothing: float = Field(
        default=0.5, gt=0, description="Pseudo-count added to every histogram bin."
    )
    judge_component: str = Field(
        default="judge", description="ScoreEvent component holding the judge's outcome."
    )
    cheap_component: str | None = Field(
        default=None,
        description="Component holding the cheap scorer's outcome; None: the mean of every "
        "component other than the judge.",
    )
    gap_threshold: float = Field(
        default=0.25, gt=0,
        description="Scorer divergence fires when the window's mean |cheap − judge| exceeds "
        "the baseline's by more than this.",
    )
    rho_drop_threshold: float = Field(
        default=0.5, gt=0,
        description="…or when Spearman ρ(cheap, judge) falls this far below the baseline's.",
    )
    min_pairs: int = Field(
        default=16, ge=4,
        description="Rollouts scored by both the cheap scorer and the judge needed in the "
        "baseline and in the window before divergence is judged.",
    )
    hard_stop_signals: int = Field(
        default=2, ge=1,
        description="Signals firing at the same check that make a HARD_STOP (fewer: WARNING).",
    )
    escalate_after: int = Field(
        default=0, ge=0,
        description="A WARNING that persists this many consecutive checks becomes a "
        "HARD_STOP; 0 never escalates (genuine learning moves the reward distribution too, "
        "so one signal alone only warns by default).",
    )

    @field_validator("cheap_component", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return value or None  # GUARD_CHEAP_COMPONENT="" means "the mean of the others"

    @model_validator(mode="after")
    def _window_fits(self) -> GuardConfig:
        if self.min_pairs > min(self.warmup, self.window):
            raise ValueError(
                f"min_pairs ({self.min_pairs}) must be at most warmup ({self.warmup}) and "
                f"window ({self.window}): lower GUARD_MIN_PAIRS or raise the other two"
            )
        return self
