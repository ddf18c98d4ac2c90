"""The scorer specs that work for any environment, registered by an explicit call."""

from __future__ import annotations

from tentalis.rewards.combined import CombinedScorer
from tentalis.rewards.judge_factory import judge_from_settings
from tentalis.rewards.registry import register_generic_scorer


def register_builtin_scorers() -> None:
    """Register ``judge`` and ``combined[:profile]`` for every environment (idempotent)."""
    register_generic_scorer("judge", lambda env, arg: judge_from_settings())
    register_generic_scorer("combined", lambda env, arg: CombinedScorer(env, arg or None))
