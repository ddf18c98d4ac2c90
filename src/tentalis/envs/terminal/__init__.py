"""The ``terminal`` environment: shell tasks (:mod:`.tasks`) and the sandboxed verifier
that checks their effect (:mod:`.verifier`)."""

from tentalis.envs.registry import register_environment
from tentalis.envs.scoring import register_tool_scorers
from tentalis.envs.terminal.tasks import TERMINAL_SYSTEM_PROMPT, TerminalTasks
from tentalis.envs.terminal.verifier import COMMAND_LIMITS, MAX_COMMANDS, TerminalVerifier

TAG_PATTERN = r"<\s*cmd\s*>"


def register() -> None:
    """Register the ``terminal`` environment and its ``verifier``/``format``/``default``."""
    register_environment(TerminalTasks.name, TerminalTasks)
    register_tool_scorers(TerminalTasks.name, TerminalVerifier, TAG_PATTERN)


__all__ = ["COMMAND_LIMITS", "MAX_COMMANDS", "TERMINAL_SYSTEM_PROMPT", "TerminalTasks",
           "TerminalVerifier", "register"]
