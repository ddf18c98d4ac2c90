"""``GuiVerifier``: replay the worker's actions on a fresh form; the final state decides.

The task gives ``metadata["form"]`` (which form, see
:mod:`tentalis.envs.gui.tasks`) and ``metadata["target"]`` (``{field id: value}``).
Actions are the ``<action>`` tags of each step, in order (of the whole text when no step
has one), at most :data:`MAX_ACTIONS`.

Scores:

* outcome: 1.0 when the form was submitted and every field equals its target (text
  compared after trimming; case matters), else 0.0;
* step ``i``: the share of its actions that were valid on the screen at that moment
  (an existing element, a known option, a form still open); 0.5 for a step without one.
"""

from __future__ import annotations

from tentalis.envs.gui.tasks import form_for
from tentalis.errors import ScoringError
from tentalis.events import ResultEvent, TaskEvent
from tentalis.rewards.base import StepScores
from tentalis.steps.code_blocks import raw_steps, tagged

MAX_ACTIONS = 40


class GuiVerifier:
    """Replays actions on the form state machine; see the module docstring."""

    name = "verifier"

    async def score(self, task: TaskEvent, result: ResultEvent) -> StepScores:
        target = task.metadata.get("target")
        try:
            form = form_for(str(task.metadata.get("form")))
        except KeyError as exc:
            raise ScoringError(f"gui: task {task.task_id}: {exc}") from exc
        if not isinstance(target, dict):
            raise ScoringError(f"gui: task {task.task_id} lacks metadata['target']")
        per_step = [tagged(s, "action") for s in raw_steps(result.raw_text, result.steps)]
        if not any(per_step) and (loose := tagged(result.raw_text, "action")):
            per_step.append(loose)
        budget, invalid = MAX_ACTIONS, []
        valid_by_step: list[list[bool]] = []
        for actions in per_step:
            oks = []
            for action in actions[: max(budget, 0)]:
                why = form.apply(action)
                oks.append(why is None)
                if why is not None:
                    invalid.append(why)
                budget -= 1
            valid_by_step.append(oks)
        wrong = {k: form.values.get(k) for k, v in target.items()
                 if _norm(form.values.get(k)) != _norm(v)}  # fmt: skip
        passed = form.submitted and not wrong
        steps = [sum(o) / len(o) if o else 0.5 for o in valid_by_step[: len(result.steps)]]
        steps += [0.5] * (len(result.steps) - len(steps))
        return StepScores(steps, 1.0 if passed else 0.0, {
            "passed": passed, "submitted": form.submitted, "wrong_fields": sorted(wrong),
            "invalid_actions": invalid[:10], "final_screen": form.render(),
        })  # fmt: skip


def _norm(value: object) -> object:
    return value.strip() if isinstance(value, str) else value
