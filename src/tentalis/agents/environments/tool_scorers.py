"""Scorers of the tool environments (terminal, swe, gui), registered by name.

=============  ==========  =============================================================
environment    spec        scorer
=============  ==========  =============================================================
terminal       verifier    :class:`~tentalis.rewards.terminal.TerminalVerifier`
swe            verifier    :class:`~tentalis.rewards.swe.SweVerifier`
gui            verifier    :class:`~tentalis.rewards.gui.GuiVerifier`
each           format      :class:`~tentalis.rewards.regex.FormatRuleScorer`: every step in
                           ``<step>`` tags (0.5) and holding the environment's tag —
                           ``<cmd>``, ``<file …>`` or ``<action>`` (0.5)
each           default     ``WeightedScorer(verifier 0.9, format 0.1)``, named after the
                           environment
=============  ==========  =============================================================

Factories import the scorers when called, so importing an environment stays cheap and free
of import cycles (``tentalis.rewards.gui`` imports the gui environment).
"""

from __future__ import annotations

from tentalis.rewards.base import StepScorer
from tentalis.rewards.registry import register_scorer

_TAGS = {"terminal": r"<\s*cmd\s*>", "swe": r"<\s*file\b", "gui": r"<\s*action\s*>"}


def _verifier(environment: str) -> StepScorer:
    if environment == "terminal":
        from tentalis.rewards.terminal import TerminalVerifier

        return TerminalVerifier()
    if environment == "swe":
        from tentalis.rewards.swe import SweVerifier

        return SweVerifier()
    from tentalis.rewards.gui import GuiVerifier

    return GuiVerifier()


def _format(environment: str) -> StepScorer:
    from tentalis.rewards.regex import FormatRuleScorer, RegexRule

    return FormatRuleScorer([
        RegexRule("step_tags", r"<\s*step\b[^>]*>.*?<\s*/\s*step\s*>", 0.5),
        RegexRule("tool_tag", _TAGS[environment], 0.5),
    ], name="format")  # fmt: skip


def _default(environment: str) -> StepScorer:
    from tentalis.rewards.weighted import WeightedScorer

    return WeightedScorer([(_verifier(environment), 0.9), (_format(environment), 0.1)],
                          name=environment)  # fmt: skip


def register_tool_scorers() -> None:
    """Register ``verifier``, ``format`` and ``default`` for terminal, swe and gui."""
    for env in _TAGS:
        register_scorer(env, "verifier", lambda env=env: _verifier(env))  # type: ignore[misc]
        register_scorer(env, "format", lambda env=env: _format(env))  # type: ignore[misc]
        register_scorer(env, "default", lambda env=env: _default(env))  # type: ignore[misc]
