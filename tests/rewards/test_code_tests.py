"""The unit-test verifier: passing code scores 1, failing, broken, missing or cheating code 0."""

from __future__ import annotations

import pytest

from tentalis.errors import ScoringError
from tentalis.events import ResultEvent, TaskEvent
from tentalis.rewards.code_tests import CodeTestVerifier
from tentalis.sandbox import SandboxLimits
from tentalis.steps.parsing import parse_steps

TESTS = (
    "import unittest\nfrom solution import add\n\n"
    "class T(unittest.TestCase):\n"
    "    def test_small(self):\n        self.assertEqual(add(2, 3), 5)\n"
    "    def test_negative(self):\n        self.assertEqual(add(-1, 1), 0)\n"
)
TASK = TaskEvent(prompt="Write add(a, b).", answer="tests pass", environment="code",
                 metadata={"tests": TESTS})  # fmt: skip
FAST = SandboxLimits(wall_s=5.0, cpu_s=1)


def _result(text: str) -> ResultEvent:
    return ResultEvent(task_id=TASK.task_id, task=TASK, worker_id="w", raw_text=text,
                       steps=parse_steps(text).steps)  # fmt: skip


@pytest.mark.parametrize(
    ("text", "outcome"),
    [
        ("<step>Add them.</step>\n```python\ndef add(a, b):\n    return a + b\n```", 1.0),
        ('<file path="solution.py">\ndef add(a, b):\n    return b + a\n</file>', 1.0),
        ("```python\ndef add(a, b):\n    return a - b\n```", 0.0),  # wrong
        ("```python\ndef add(a, b) return\n```", 0.0),  # does not compile
        ("I would add them.", 0.0),  # no code
        ("```python\nimport os\nprint('Ran 2 tests\\n\\nOK')\nos._exit(0)\n```", 0.0),  # fakes OK
        ("```python\nwhile True:\n    pass\n```", 0.0),  # runaway
    ],
)
async def test_outcome_is_whether_the_tests_pass(text: str, outcome: float) -> None:
    scores = await CodeTestVerifier(FAST).score(TASK, _result(text))
    assert scores.outcome_score == outcome, scores.details


async def test_steps_score_whether_their_code_compiles() -> None:
    text = ("<step>Plan.</step><step>```python\ndef add(a, b):\n    return a + b\n```</step>"
            "<step>```python\ndef add(a b):\n```</step>")  # fmt: skip
    scores = await CodeTestVerifier(FAST).score(TASK, _result(text))
    assert scores.step_scores == [0.5, 1.0, 0.0]


async def test_task_without_tests_is_a_task_error() -> None:
    task = TaskEvent(prompt="x", answer="y", environment="code")
    with pytest.raises(ScoringError, match="tests"):
        await CodeTestVerifier(FAST).score(task, _result("```python\npass\n```"))
