from __future__ import annotations

from collections.abc import Callable

import pytest

from tentalis.events import ResultEvent, TaskEvent
from tentalis.steps.parsing import parse_steps

MakeResult = Callable[..., tuple[TaskEvent, ResultEvent]]


@pytest.fixture
def make_result() -> MakeResult:
    """``make_result(text, answer="7")`` → (task, result) parsed the way a worker does."""

    def make(text: str, answer: str | None = "7", **result_fields) -> tuple[TaskEvent, ResultEvent]:
        task = TaskEvent(prompt="What is 3 + 4?", answer=answer)
        parsed = parse_steps(text)
        fields = {
            "task_id": task.task_id,
            "task": task,
            "worker_id": "w",
            "raw_text": text,
            "steps": parsed.steps,
            "final_answer": parsed.final_answer,
            "parse_status": parsed.status,
        }
        return task, ResultEvent(**(fields | result_fields))

    return make
