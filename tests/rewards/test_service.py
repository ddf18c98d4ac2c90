from __future__ import annotations

from tentalis.events import ResultEvent, TaskEvent, derived_id
from tentalis.rewards.registry import scorer_for
from tentalis.rewards.service import ScorerService


def _result(task: TaskEvent, text: str, steps, answer, status="ok", error=None):  # type: ignore[no-untyped-def]
    return ResultEvent(task_id=task.task_id, task=task, environment=task.environment,
                       worker_id="w", raw_text=text, steps=steps, final_answer=answer,
                       parse_status=status, error=error)


async def test_scores_a_correct_result_with_components(memory_bus) -> None:
    svc = ScorerService(memory_bus, scorer_for)
    task = TaskEvent(prompt="What is 3 + 4?", answer="7")
    result = _result(task, "<step>3 + 4 = 7</step>\nAnswer: 7", ["3 + 4 = 7"], "7")
    score = await svc.score(result)
    assert score.event_id == derived_id(result.event_id, "score", score.scorer)
    assert score.error is None and score.outcome_score > 0.9
    assert score.components["verifier"] == 1.0 and score.step_scores == [1.0]


async def test_wrong_step_and_answer_score_low(memory_bus) -> None:
    svc = ScorerService(memory_bus, scorer_for)
    task = TaskEvent(prompt="What is 3 + 4?", answer="7")
    score = await svc.score(_result(task, "<step>3 + 4 = 8</step>\nAnswer: 8", ["3 + 4 = 8"],
                                    "8"))
    assert score.components["verifier"] == 0.0 and score.step_scores[0] < 0.5


async def test_failed_results_and_unknown_environments_are_recorded_as_errors(
    memory_bus,
) -> None:
    svc = ScorerService(memory_bus, scorer_for)
    task = TaskEvent(prompt="x", answer="1")
    failed = await svc.score(_result(task, "", [], None, status="error", error="boom"))
    assert failed.error and "boom" in failed.error and failed.outcome_score == 0.0
    alien = TaskEvent(prompt="x", answer="1", environment="no-such-env")
    unknown = await svc.score(_result(alien, "Answer: 1", [], "1"))
    assert unknown.error and "no-such-env" in unknown.error


async def test_task_without_ground_truth_gets_format_only(memory_bus) -> None:
    svc = ScorerService(memory_bus, scorer_for)
    task = TaskEvent(prompt="Explain 3 + 4.")  # no answer: nothing to verify
    score = await svc.score(_result(task, "<step>3 + 4 = 7</step>\nAnswer: 7", ["3 + 4 = 7"],
                                    "7"))
    assert score.error is None and score.scorer == "format"


async def test_training_tasks_can_ask_for_the_lenient_scorer(memory_bus) -> None:
    svc = ScorerService(memory_bus, scorer_for)
    task = TaskEvent(prompt="What is 3 + 4?", answer="7", metadata={"scorer": "lenient"})
    score = await svc.score(_result(task, "the sum is 7", [], None, status="no_steps"))
    assert score.scorer == "lenient_math" and 0.0 < score.outcome_score < 1.0
