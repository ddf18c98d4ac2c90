"""``SweVerifier``: apply the worker's file replacements to the task's repository and run
its tests in the sandbox (see :mod:`tentalis.envs.swe.tasks`).

The task gives ``metadata["files"]`` (the repository), ``metadata["editable"]`` (paths the
worker may replace) and ``metadata["tests"]`` (the ``unittest`` modules to run). The worker's
``<file path=…>`` blocks replace editable files; blocks for any other path (the tests
above all) are ignored and listed in ``details["rejected_paths"]``. With no usable block
and exactly one editable file, the last fenced Python block is taken as that file.

Scores:

* outcome: 1.0 when every test passes on the patched repository, else 0.0;
* step ``i``: as :func:`tentalis.rewards.code_tests.step_code_score` — 1.0 / 0.0 for a
  step whose code compiles / does not, 0.5 without code.
"""

from __future__ import annotations

import asyncio

from tentalis.errors import ScoringError
from tentalis.events import ResultEvent, TaskEvent
from tentalis.rewards.base import StepScores
from tentalis.rewards.code_tests import TEST_LIMITS, run_python_tests, step_code_score
from tentalis.sandbox import SandboxLimits
from tentalis.steps.code_blocks import file_blocks, last_code_block, raw_steps


class SweVerifier:
    """The tests decide; see the module docstring."""

    name = "verifier"

    def __init__(self, limits: SandboxLimits = TEST_LIMITS) -> None:
        self.limits = limits

    async def score(self, task: TaskEvent, result: ResultEvent) -> StepScores:
        meta = task.metadata
        files, editable, tests = meta.get("files"), meta.get("editable"), meta.get("tests")
        if not (isinstance(files, dict) and isinstance(editable, list) and isinstance(tests, list)):
            raise ScoringError(f"swe: task {task.task_id} lacks metadata files/editable/tests")
        text = result.raw_text or ""
        blocks = file_blocks(text)
        patch = {p: c for p, c in blocks.items() if p in editable}
        rejected = sorted(set(blocks) - set(patch))
        if not patch and len(editable) == 1 and (code := last_code_block(text)) is not None:
            patch = {editable[0]: code}
        steps = [step_code_score(s) for s in raw_steps(text, result.steps)]
        if not patch:
            return StepScores(steps, 0.0, {"passed": False, "reason": "no file replacement found",
                                           "rejected_paths": rejected})  # fmt: skip
        run = await asyncio.to_thread(run_python_tests, {**files, **patch}, tests, self.limits)
        return StepScores(steps, 1.0 if run.all_passed else 0.0, {
            "passed": run.all_passed, "patched": sorted(patch), "rejected_paths": rejected,
            **run.as_details(),
        })  # fmt: skip
