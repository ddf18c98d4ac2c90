"""Unit-test verifier: run the task's tests against the worker's code in the sandbox.

The task carries (in ``TaskEvent.metadata``):

* ``tests`` — ``{path: source}`` of ``unittest`` test modules (a plain string is one file,
  ``test_solution.py``);
* ``solution_path`` — where the worker's code goes (default ``solution.py``);
* ``files`` — optional ``{path: source}`` of other files the tests need.

The worker's code is its last fenced Python block (or a ``<file path=…>`` block for
``solution_path``). Tests run under :class:`~tentalis.sandbox.Sandbox` limits through a
small driver that reports counts on stdout behind a per-run random token, so a program
that merely prints "OK" or exits early does not pass.

Scores:

* outcome: 1.0 when every test ran and passed (and at least one ran), else 0.0;
* step ``i``: 1.0 when the step contains a code block that compiles, 0.0 when it
  contains one that does not, 0.5 (neutral) when it contains no code.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tentalis.errors import ScoringError
from tentalis.events import ResultEvent, TaskEvent
from tentalis.rewards.base import StepScores
from tentalis.sandbox import Sandbox, SandboxLimits, sandbox_python
from tentalis.steps.code_blocks import fenced_blocks, file_blocks, last_code_block, raw_steps

DRIVER_PATH = "_tentalis_test_driver.py"
_DRIVER = """\
import json, sys, unittest
token = sys.stdin.readline().strip()
sys.path.insert(0, ".")
suite = unittest.defaultTestLoader.loadTestsFromNames(sys.argv[1:])
res = unittest.TextTestRunner(stream=sys.stderr, verbosity=2).run(suite)
counts = {"run": res.testsRun, "failures": len(res.failures), "errors": len(res.errors),
          "skipped": len(res.skipped)}
sys.stdout.write("\\n" + token + json.dumps(counts) + "\\n")
"""
TEST_LIMITS = SandboxLimits(wall_s=20.0, cpu_s=10, memory_mb=512, max_processes=16)


@dataclass(frozen=True)
class TestRun:
    """What one run of the tests gave. ``passed`` counts tests that ran without failing."""

    ran: int
    passed: int
    failed: int
    errors: int
    exit_code: int
    killed_reason: str | None
    output: str = field(repr=False)

    @property
    def all_passed(self) -> bool:
        return self.ran > 0 and self.passed == self.ran and self.killed_reason is None

    def as_details(self) -> dict[str, Any]:
        return {
            "tests_ran": self.ran, "tests_passed": self.passed, "tests_failed": self.failed,
            "test_errors": self.errors, "exit_code": self.exit_code,
            "killed_reason": self.killed_reason, "output_tail": self.output[-800:],
        }  # fmt: skip


def _module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def run_python_tests(
    files: Mapping[str, str], test_paths: list[str], limits: SandboxLimits = TEST_LIMITS
) -> TestRun:
    """Write ``files`` to a fresh sandbox and run the ``unittest`` modules at
    ``test_paths`` (which must be among ``files``). Raises SandboxUnavailable when the
    sandbox cannot isolate; the worker's code failing in any way is a result, not an error."""
    token = secrets.token_hex(16)
    with Sandbox(limits, files={**files, DRIVER_PATH: _DRIVER}) as box:
        argv = [sandbox_python(), "-B", "-E", "-s", DRIVER_PATH, *map(_module_name, test_paths)]
        r = box.run(argv, stdin=token + "\n")
    counts = {"run": 0, "failures": 0, "errors": 0}
    for line in r.stdout.splitlines():
        if line.startswith(token):
            with contextlib.suppress(ValueError):
                counts = json.loads(line[len(token) :])
    ran, failed, errors = (int(counts.get(k, 0)) for k in ("run", "failures", "errors"))
    return TestRun(
        ran=ran, passed=max(ran - failed - errors, 0), failed=failed, errors=errors,
        exit_code=r.exit_code, killed_reason=r.killed_reason, output=r.stderr,
    )  # fmt: skip


def step_code_score(step: str) -> float:
    """1.0 / 0.0 for a step whose code blocks all compile / do not; 0.5 without code."""
    blocks = [code for lang, code in fenced_blocks(step) if lang in ("python", "py", "")]
    if not blocks:
        return 0.5
    try:
        for code in blocks:
            ast.parse(code)
    except (SyntaxError, ValueError):
        return 0.0
    return 1.0


def _as_files(value: object, default_name: str) -> dict[str, str]:
    if isinstance(value, str):
        return {default_name: value}
    if isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values()):
        return {str(k): v for k, v in value.items()}
    raise ScoringError(f"task metadata must give {default_name!r} as text or {{path: text}}")


class CodeTestVerifier:
    """Outcome: do the task's unit tests pass on the worker's code? See the module
    docstring for the task fields and the per-step scores."""

    name = "verifier"

    def __init__(self, limits: SandboxLimits = TEST_LIMITS) -> None:
        self.limits = limits

    async def score(self, task: TaskEvent, result: ResultEvent) -> StepScores:
        meta = task.metadata
        if "tests" not in meta:
            raise ScoringError(f"code tests: task {task.task_id} has no metadata['tests']")
        tests = _as_files(meta["tests"], "test_solution.py")
        files = _as_files(meta.get("files", {}), "helpers.py")
        target = str(meta.get("solution_path", "solution.py"))
        text = result.raw_text or ""
        code = file_blocks(text).get(target) or last_code_block(text)
        steps = [step_code_score(s) for s in raw_steps(result.raw_text, result.steps)]
        if code is None:
            return StepScores(steps, 0.0, {"passed": False, "reason": "no code block found"})
        run = await _run_in_thread({**files, target: code, **tests}, list(tests), self.limits)
        return StepScores(steps, 1.0 if run.all_passed else 0.0,
                          {"passed": run.all_passed, **run.as_details()})  # fmt: skip


async def _run_in_thread(files: dict[str, str], tests: list[str], limits: SandboxLimits) -> TestRun:
    return await asyncio.to_thread(run_python_tests, files, tests, limits)
