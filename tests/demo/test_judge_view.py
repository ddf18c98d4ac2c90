"""The demo's judge-vs-verifier table, with a scripted judge."""

from __future__ import annotations

from rich.console import Console

from tentalis.demo.judge_view import comparison_table, cost_line, judge_results
from tentalis.events import ResultEvent, TaskEvent
from tentalis.rewards.judge import JudgeScorer
from tentalis.steps.parsing import parse_steps


def result(text: str) -> ResultEvent:
    task = TaskEvent(prompt="What is 3 + 4?", answer="7")
    p = parse_steps(text)
    return ResultEvent(task_id=task.task_id, task=task, worker_id="w", raw_text=text,
                       steps=p.steps, final_answer=p.final_answer, parse_status=p.status)


async def test_steps_side_by_side(scripted_inference) -> None:
    judge = JudgeScorer(scripted_inference(lambda r: "Verdict: wrong\nReason: looks off"))
    rows = await judge_results(judge, [result("<step>3 + 4 = 7</step>\nAnswer: 7")])
    console = Console(width=200, record=True)
    console.print(comparison_table(rows))
    text = console.export_text()
    assert "3 + 4 = 7" in text and "1.00" in text and "0.00 (100%)" in text
    assert "looks off" in text and "7 (expected 7)" in text
    assert cost_line(rows).startswith("judge: 1 results, 1 steps, 2 requests (0 malformed)")


async def test_an_answer_without_steps_is_scored_line_by_line(scripted_inference) -> None:
    judge = JudgeScorer(scripted_inference(lambda r: "Verdict: correct"))
    rows = await judge_results(judge, [result("First, 3 + 4 = 8.\n\nSo it is 8.\nAnswer: 8")])
    assert rows[0].result.steps == ["First, 3 + 4 = 8.", "So it is 8.", "Answer: 8"]
    assert rows[0].verifier.step_scores[0] == 0.0 and rows[0].judge.step_scores[0] == 1.0
    console = Console(width=200, record=True)
    console.print(comparison_table(rows))
    assert "line 1" in console.export_text()
