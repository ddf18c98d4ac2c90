"""The scorers a tool environment (terminal, swe, gui) registers under its name.

==========  =============================================================================
spec        scorer
==========  =============================================================================
verifier    the environment's own verifier
format      :class:`~tentalis.rewards.regex.FormatRuleScorer`: every step in ``<step>``
            tags (0.5) and holding the environment's tag — ``<cmd>``, ``<file …>`` or
            ``<action>`` (0.5)
default     ``WeightedScorer(verifier 0.9, format 0.1)``, named after the environment
==========  =============================================================================
"""

from __future__ import annotations

from collections.abc import Callable

from tentalis.rewards.base import StepScorer
from tentalis.rewards.regex import FormatRuleScorer, RegexRule
from tentalis.rewards.registry import register_scorer
from tentalis.rewards.weighted import WeightedScorer


def tool_format_scorer(tag_pattern: str) -> StepScorer:
    """Every step in ``<step>`` tags (0.5) and holding ``tag_pattern`` (0.5)."""
    return FormatRuleScorer([
        RegexRule("step_tags", r"<\s*step\b[^>]*>.*?<\s*/\s*step\s*>", 0.5),
        RegexRule("tool_tag", tag_pattern, 0.5),
    ], name="format")  # fmt: skip


def register_tool_scorers(
    environment: str, verifier: Callable[[], StepScorer], tag_pattern: str
) -> None:
    """Register ``verifier``, ``format`` and ``default`` for ``environment``."""
    register_scorer(environment, "verifier", verifier)
    register_scorer(environment, "format", lambda: tool_format_scorer(tag_pattern))
    register_scorer(environment, "default", lambda: WeightedScorer(
        [(verifier(), 0.9), (tool_format_scorer(tag_pattern), 0.1)], name=environment))  # fmt: skip
