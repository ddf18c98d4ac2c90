"""Reward-hacking guard: watch training-time signals, say WARNING or HARD_STOP, and why.

A pure core (:class:`RewardHackingGuard`: observations in, verdicts out) configured by
:class:`GuardConfig`; the trainer service acts on its verdicts through
:mod:`tentalis.training.promotion`.
"""

from tentalis.config.guard import GuardConfig
from tentalis.rewards.guard.monitor import Baseline, RewardHackingGuard
from tentalis.rewards.guard.observation import (
    GuardLevel,
    GuardVerdict,
    Observation,
    SignalReading,
    observation_from_score,
    scorer_pair,
)

__all__ = [
    "Baseline",
    "GuardConfig",
    "GuardLevel",
    "GuardVerdict",
    "Observation",
    "RewardHackingGuard",
    "SignalReading",
    "observation_from_score",
    "scorer_pair",
]
