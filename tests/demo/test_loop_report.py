"""LoopReport's counts, from outcomes built by hand."""

from __future__ import annotations

from tentalis.agents.manager import TaskOutcome
from tentalis.demo.loop import LoopReport
from tentalis.events import ResultEvent, ScoreEvent, TaskEvent
from tentalis.steps.parsing import parse_steps


def outcome(text: str, score: float) -> TaskOutcome:
    task = TaskEvent(prompt="What is 3 + 4?", answer="7")
    parsed = parse_steps(text)
    result = ResultEvent(task_id=task.task_id, task=task, worker_id="w", raw_text=text,
                         steps=parsed.steps, final_answer=parsed.final_answer,
                         parse_status=parsed.status)
    return TaskOutcome(task=task, score=ScoreEvent(task_id=task.task_id, result=result,
                                                   scorer="math", outcome_score=score))


def test_answer_lines_and_full_format_are_counted_apart() -> None:
    report = LoopReport(outcomes=[
        outcome("<step>3 + 4 = 7</step>\nAnswer: 7", 1.0),  # steps and an Answer: line
        outcome("3 + 4 = 7. Answer: 7", 1.0),  # an Answer: line, no steps
        outcome("<step>3 + 4 = 8</step>\nAnswer: 8", 0.0),  # wrong, but in format
        outcome("The answer is 7", 1.0),  # right, in neither format
        TaskOutcome(task=TaskEvent(prompt="?", answer="1"), timed_out=True),
    ], wall_s=1.0, completion_tokens=0)
    assert report.correct == 3
    assert report.answer_lines == 3
    assert report.in_format == 2
