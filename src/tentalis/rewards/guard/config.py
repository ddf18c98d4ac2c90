"""``GuardConfig``: the reward-hacking guard's thresholds, each documented once here.

The same values are read from the environment as ``GUARD_*`` Settings fields
(:meth:`GuardConfig.from_settings`); a test keeps the two sets of defaults equal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from tentalis.config import Settings


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

    @model_validator(mode="after")
    def _window_fits(self) -> GuardConfig:
        if self.min_pairs > min(self.warmup, self.window):
            raise ValueError(
                f"min_pairs ({self.min_pairs}) must be at most warmup ({self.warmup}) and "
                f"window ({self.window}): lower GUARD_MIN_PAIRS or raise the other two"
            )
        return self

    @classmethod
    def from_settings(cls, settings: Settings) -> GuardConfig:
        """The guard configuration bound to the ``GUARD_*`` settings."""
        return cls(
            enabled=settings.guard_enabled,
            warmup=settings.guard_warmup,
            window=settings.guard_window,
            check_every=settings.guard_check_every,
            length_z_threshold=settings.guard_length_z,
            kl_threshold=settings.guard_kl_threshold,
            kl_rising_checks=settings.guard_kl_rising_checks,
            judge_component=settings.guard_judge_component,
            cheap_component=settings.guard_cheap_component or None,
            gap_threshold=settings.guard_gap_threshold,
            rho_drop_threshold=settings.guard_rho_drop,
            min_pairs=settings.guard_min_pairs,
            hard_stop_signals=settings.guard_hard_stop_signals,
            escalate_after=settings.guard_escalate_after,
        )
