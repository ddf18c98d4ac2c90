"""The ``swe`` environment: one-bug repositories (:mod:`.tasks`, :mod:`.repos`) and the
verifier that applies the fix and runs their tests (:mod:`.verifier`)."""

from tentalis.envs.registry import register_environment
from tentalis.envs.scoring import register_tool_scorers
from tentalis.envs.swe.tasks import SWE_SYSTEM_PROMPT, SweTasks
from tentalis.envs.swe.verifier import SweVerifier

TAG_PATTERN = r"<\s*file\b"


def register() -> None:
    """Register the ``swe`` environment and its ``verifier``/``format``/``default``."""
    register_environment(SweTasks.name, SweTasks)
    register_tool_scorers(SweTasks.name, SweVerifier, TAG_PATTERN)


__all__ = ["SWE_SYSTEM_PROMPT", "SweTasks", "SweVerifier", "register"]
