"""The ``swe`` environment: fix the bug in a small generated repository.

Each task is a repository of two files (see :mod:`.repos`): a module with one bug and a
``unittest`` module that fails on it. The prompt shows both files and the issue. The
worker answers with its reasoning in ``<step>`` tags and then the **whole corrected file**
in ``<file path="module.py">…</file>`` (a full-file replacement, chosen over diffs because
small models cannot count diff line numbers; a single fenced Python block is accepted as
the module too). :class:`tentalis.envs.swe.verifier.SweVerifier` applies it in a sandbox and runs
the tests; the tests decide. Test files cannot be edited.
"""

from __future__ import annotations

import random
from typing import ClassVar

from tentalis.envs.base import Builder, Drawn, SuiteEnvironment, TaskSpec
from tentalis.envs.swe.repos import TEMPLATES, BugTemplate, draw_repo

SWE_SYSTEM_PROMPT = (
    "You fix bugs in a small Python repository. Think step by step: write each step inside "
    "<step> and </step> tags. Then give the complete corrected file, not a diff, as:\n"
    '<file path="name.py">\n...the whole file...\n</file>\n'
    "Do not change the tests. Example:\n"
    "<step>add() subtracts instead of adding.</step>\n"
    "<step>Return a + b.</step>\n"
    '<file path="calc.py">\ndef add(a, b):\n    return a + b\n</file>'
)


def _builder(template: BugTemplate) -> Builder:
    def build(rng: random.Random) -> Drawn:
        repo = draw_repo(template, rng)
        module, tests = f"{repo.module}.py", f"test_{repo.module}.py"
        prompt = (
            f"Issue: {repo.issue}.\nRunning `python -m unittest test_{repo.module}` fails.\n\n"
            f"File {module}:\n```python\n{repo.buggy}```\n\n"
            f"File {tests}:\n```python\n{repo.tests}```\n\n"
            f"Fix the bug in {module}."
        )
        return Drawn(
            key=f"{repo.template}:{repo.module}:{'|'.join(map(str, repo.cases))}",
            prompt=prompt,
            answer=repo.fixed,
            metadata={"template": repo.template, "files": {module: repo.buggy, tests: repo.tests},
                      "editable": [module], "tests": [tests]},
        )  # fmt: skip

    return build


BUILDERS = tuple(_builder(t) for t in TEMPLATES)


class SweTasks(SuiteEnvironment):
    """Seeded one-bug repositories; see the module docstring."""

    name: ClassVar[str] = "swe"
    builders = BUILDERS
    system_prompt = SWE_SYSTEM_PROMPT


    @staticmethod
    def reference_solution(spec: TaskSpec) -> str:
        """A hand-written correct answer in the worker's format: the fixed module."""
        [module] = spec.metadata["editable"]
        return (f"<step>Read the failing test and the issue.</step>\n"
                f"<step>Correct the faulty line.</step>\n"
                f'<file path="{module}">\n{spec.answer}</file>')  # fmt: skip
