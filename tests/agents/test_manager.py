from __future__ import annotations

import asyncio

from tentalis.agents.manager import Manager, ManagerConfig
from tentalis.agents.review import RuleReviewer
from tentalis.events import (
    FeedbackEvent,
    ResultEvent,
    ScoreEvent,
    Subjects,
    TaskEvent,
    derived_id,
)


def _score(task: TaskEvent, *, answer: str, steps: list[str], step_scores, outcome):  # type: ignore[no-untyped-def]
    result = ResultEvent(task_id=task.task_id, task=task, worker_id="w", raw_text="…",
                         steps=steps, final_answer=answer)
    return ScoreEvent(task_id=task.task_id, result=result, scorer="math",
                      step_scores=step_scores, outcome_score=outcome,
                      components={"verifier": outcome})


async def test_review_names_the_failing_step_and_the_expected_answer(
    memory_bus, collect_events
) -> None:
    manager = Manager(memory_bus, RuleReviewer(), ManagerConfig())
    task = TaskEvent(prompt="Tom has 3 apples and buys 4. How many?", answer="7")
    score = _score(task, answer="8", steps=["3 + 4 = 8"], step_scores=[0.0], outcome=0.0)
    await memory_bus.publish(score)
    spec = manager.review_spec()
    async for batch in memory_bus.consume(spec):
        for d in batch:
            await manager.handle_score(d)
            await d.ack()
        break
    [fb] = await collect_events(memory_bus, [Subjects.FEEDBACK_ALL], 1)
    assert isinstance(fb, FeedbackEvent)
    assert fb.event_id == derived_id(task.event_id, "feedback")
    assert fb.score == 0.0 and fb.feedback_kind == "review"
    assert "8 is wrong" in fb.feedback and "7" in fb.feedback and "Step 1" in fb.feedback


async def test_submit_resolves_on_feedback_and_times_out_without_it(memory_bus) -> None:
    manager = Manager(memory_bus, RuleReviewer(), ManagerConfig(task_timeout=0.5))
    answered = TaskEvent(prompt="answered")
    ignored = TaskEvent(prompt="nobody answers this")

    async def fake_pipeline(event) -> None:  # type: ignore[no-untyped-def]
        # stands in for worker + scorer + review: feedback for the first task only
        if isinstance(event, TaskEvent) and event.task_id == answered.task_id:
            await memory_bus.publish(_score(event, answer="1", steps=[], step_scores=[],
                                            outcome=1.0))
            await memory_bus.publish(FeedbackEvent(
                event_id=derived_id(event.event_id, "feedback"), task_id=event.task_id,
                score=1.0, feedback="fine"))

    stop = await memory_bus.listen([Subjects.TASKS_ALL], fake_pipeline)
    outcomes = await manager.submit([answered, ignored])
    await stop()
    by_id = {o.task.task_id: o for o in outcomes}
    ok, late = by_id[answered.task_id], by_id[ignored.task_id]
    assert not ok.timed_out and ok.feedback is not None and ok.feedback.score == 1.0
    assert ok.score is not None and ok.score.outcome_score == 1.0
    assert late.timed_out and late.feedback is not None
    assert late.feedback.feedback_kind == "timeout" and late.feedback.score == 0.0
    assert late.latency_s >= 0.5


async def test_in_flight_window_bounds_outstanding_tasks(memory_bus) -> None:
    manager = Manager(memory_bus, RuleReviewer(), ManagerConfig(task_timeout=0.2,
                                                                max_in_flight=2))
    published: list[float] = []

    async def on_task(event) -> None:  # type: ignore[no-untyped-def]
        published.append(asyncio.get_running_loop().time())

    stop = await memory_bus.listen([Subjects.TASKS_ALL], on_task)
    await manager.submit([TaskEvent(prompt=f"t{i}") for i in range(4)])
    await stop()
    # two waves: the 3rd and 4th tasks are published only after the first two timed out
    assert len(published) == 4
    assert published[2] - published[0] >= 0.19


async def test_decompose_passes_single_questions_through_and_splits_lists(
    memory_bus, scripted_inference
) -> None:
    llm = scripted_inference(lambda r: "1. Add 3 and 4.\n2. Multiply 6 by 7.\nextra chatter")
    manager = Manager(memory_bus, RuleReviewer(), ManagerConfig(), inference=llm)
    [single] = await manager.decompose("What is 3 + 4?", "req-1")
    assert single.prompt == "What is 3 + 4?" and llm.calls == 0
    parts = await manager.decompose("What is 3 + 4? And what is 6 times 7?", "req-2")
    assert [p.prompt for p in parts] == ["Add 3 and 4.", "Multiply 6 by 7."]
    assert all(p.request_id == "req-2" for p in parts)
