"""What the guard sees of one rollout, and what it concludes at a check."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from tentalis.events import ScoreEvent


@dataclass(frozen=True)
class Observation:
    """One rollout: completion length (tokens), outcome reward in [0, 1], and — when the
    result was scored by both — the cheap scorer's and the judge's outcome."""

    length: int
    reward: float
    cheap: float | None = None
    judge: float | None = None

    def __post_init__(self) -> None:
        if self.length < 0:
            raise ValueError(f"observation length must be >= 0, got {self.length}")
        if not (math.isfinite(self.reward) and 0.0 <= self.reward <= 1.0):
            raise ValueError(f"observation reward must be in [0, 1], got {self.reward}")
        for name in ("cheap", "judge"):
            v = getattr(self, name)
            if v is not None and not math.isfinite(v):
                raise ValueError(f"observation {name} score must be finite, got {v}")

    @property
    def paired(self) -> bool:
        return self.cheap is not None and self.judge is not None


def _finite(v: object) -> float | None:
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def scorer_pair(
    components: Mapping[str, float], judge: str, cheap: str | None
) -> tuple[float | None, float | None]:
    """``(cheap, judge)`` from a ScoreEvent's components; ``(None, None)`` unless both are
    there. With ``cheap=None`` the cheap score is the mean of the non-judge components."""
    j = _finite(components.get(judge))
    if j is None:
        return None, None
    if cheap is not None:
        c = _finite(components.get(cheap))
    else:
        others = [f for k, v in components.items() if k != judge and (f := _finite(v)) is not None]
        c = sum(others) / len(others) if others else None
    return (c, j) if c is not None else (None, None)


def observation_from_score(
    score: ScoreEvent, length: int, *, judge: str = "judge", cheap: str | None = None
) -> Observation:
    """The observation of a scored result whose completion is ``length`` tokens long."""
    c, j = scorer_pair(score.components, judge, cheap)
    return Observation(length=length, reward=float(score.outcome_score), cheap=c, judge=j)


class GuardLevel(StrEnum):
    OK = "ok"
    WARNING = "warning"
    HARD_STOP = "hard_stop"


@dataclass(frozen=True)
class SignalReading:
    """One signal at one check: its value, threshold, whether it fired, and why."""

    name: str
    fired: bool
    value: float | None
    threshold: float
    message: str
    numbers: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GuardVerdict:
    """The outcome of one check."""

    level: GuardLevel
    check: int
    observations: int
    signals: tuple[SignalReading, ...]
    streak: int = 0  # consecutive checks (this one included) with a signal firing

    @property
    def fired(self) -> list[SignalReading]:
        return [s for s in self.signals if s.fired]

    @property
    def reason(self) -> str:
        """The firing signals' messages, or a note that none fired."""
        if not self.fired:
            return "no signal fired"
        text = "; ".join(s.message for s in self.fired)
        if self.level is GuardLevel.HARD_STOP and len(self.fired) == 1:
            text += f" (persisted for {self.streak} checks)"
        return text

    def numbers(self) -> dict[str, float]:
        """Every reading's numbers, prefixed by its signal's name."""
        out: dict[str, float] = {}
        for s in self.signals:
            if s.value is not None:
                out[s.name] = s.value
            out.update({f"{s.name}.{k}": v for k, v in s.numbers.items()})
        return out
