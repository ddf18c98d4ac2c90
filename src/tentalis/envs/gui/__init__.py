"""The ``gui`` environment: text-rendered forms (:mod:`.tasks`, :mod:`.form`) and the
verifier that replays the worker's actions on them (:mod:`.verifier`)."""

from tentalis.envs.gui.form import FormField, FormState
from tentalis.envs.gui.tasks import GUI_SYSTEM_PROMPT, GuiTasks, form_for
from tentalis.envs.gui.verifier import MAX_ACTIONS, GuiVerifier
from tentalis.envs.registry import register_environment
from tentalis.envs.scoring import register_tool_scorers

TAG_PATTERN = r"<\s*action\s*>"


def register() -> None:
    """Register the ``gui`` environment and its ``verifier``/``format``/``default``."""
    register_environment(GuiTasks.name, GuiTasks)
    register_tool_scorers(GuiTasks.name, GuiVerifier, TAG_PATTERN)


__all__ = ["GUI_SYSTEM_PROMPT", "MAX_ACTIONS", "FormField", "FormState", "GuiTasks",
           "GuiVerifier", "form_for", "register"]
