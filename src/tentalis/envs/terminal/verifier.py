"""``TerminalVerifier``: run the worker's shell commands in a sandbox, check the effect.

The task (see :mod:`tentalis.envs.terminal.tasks`) gives ``metadata["files"]``
(the starting directory) and ``metadata["check"]``:

* ``{"kind": "output"}`` — the last command's output must state ``TaskEvent.answer``
  (compared as numbers when both hold one, else as text after normalisation; a path may be
  printed with a leading ``./``);
* ``{"kind": "file", "path": p, "content": c}`` — after the commands, file ``p`` must
  hold ``c`` (trailing whitespace of each line ignored).

Commands are the ``<cmd>`` tags of each step, in order (of the whole text when no step has
one), at most :data:`MAX_COMMANDS`, each under :data:`COMMAND_LIMITS` in one sandbox.

Scores:

* outcome: 1.0 when the check holds, else 0.0 (also when there are no commands);
* step ``i``: the share of its commands that exited 0 within their limits; 0.5 (neutral)
  for a step without a command.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tentalis.errors import ScoringError
from tentalis.events import ResultEvent, TaskEvent
from tentalis.rewards.base import StepScores
from tentalis.sandbox import Sandbox, SandboxLimits
from tentalis.steps.answers import answers_match, normalise_answer
from tentalis.steps.code_blocks import raw_steps, tagged

MAX_COMMANDS = 12
COMMAND_LIMITS = SandboxLimits(wall_s=5.0, cpu_s=2, memory_mb=256, max_processes=32,
                               max_output_bytes=16_000)  # fmt: skip


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def output_states(output: str, truth: str) -> bool:
    """True when ``output`` (its last non-empty line, or all of it) states ``truth``."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        return False
    candidates = [lines[-1], " ".join(lines)]
    for c in candidates:
        if answers_match(c.removeprefix("./"), truth) or normalise_answer(c) == normalise_answer(
            truth
        ):
            return True
    return False


def _commands_by_step(result: ResultEvent) -> list[list[str]]:
    per_step = [tagged(s, "cmd") for s in raw_steps(result.raw_text, result.steps)]
    if any(per_step):
        return per_step
    loose = tagged(result.raw_text, "cmd")
    return [*per_step, loose] if loose else per_step


class TerminalVerifier:
    """Runs the commands and checks the final output or file; see the module docstring."""

    name = "verifier"

    def __init__(self, limits: SandboxLimits = COMMAND_LIMITS) -> None:
        self.limits = limits

    async def score(self, task: TaskEvent, result: ResultEvent) -> StepScores:
        check = task.metadata.get("check")
        files = task.metadata.get("files", {})
        if not isinstance(check, dict) or not isinstance(files, dict):
            raise ScoringError(f"terminal: task {task.task_id} lacks metadata check/files")
        return await asyncio.to_thread(self._score, task, result, check, files)

    def _score(
        self, task: TaskEvent, result: ResultEvent, check: dict[str, Any], files: dict[str, str]
    ) -> StepScores:
        by_step = _commands_by_step(result)
        budget = MAX_COMMANDS
        ok_by_step: list[list[bool]] = []
        last_output, ran = "", 0
        with Sandbox(self.limits, files=files) as box:
            for commands in by_step:
                oks = []
                for command in commands[: max(budget, 0)]:
                    r = box.run(command)
                    oks.append(r.ok)
                    last_output, ran, budget = r.stdout, ran + 1, budget - 1
                ok_by_step.append(oks)
            passed = ran > 0 and self._check(box, check, task, last_output)
            produced = box.read(str(check.get("path", ""))) if check.get("kind") == "file" else None
        step_scores = [sum(o) / len(o) if o else 0.5 for o in ok_by_step[: len(result.steps)]]
        step_scores += [0.5] * (len(result.steps) - len(step_scores))
        details = {"passed": passed, "commands_run": ran, "commands_ok": sum(map(sum, ok_by_step)),
                   "last_output": last_output[-400:], "check": check.get("kind")}  # fmt: skip
        if produced is not None:
            details["file_content"] = produced[-400:]
        return StepScores(step_scores, 1.0 if passed else 0.0, details)

    @staticmethod
    def _check(box: Sandbox, check: dict[str, Any], task: TaskEvent, output: str) -> bool:
        kind = check.get("kind")
        if kind == "output":
            return task.answer is not None and output_states(output, task.answer)
        if kind == "file":
            content = box.read(str(check.get("path", "")))
            return content is not None and _lines(content) == _lines(str(check.get("content")))
        raise ScoringError(f"terminal: unknown check kind {kind!r} in task {task.task_id}")
