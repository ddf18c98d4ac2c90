"""The terminal environment: a deterministic, split-safe, solvable suite, scored end to end."""

from __future__ import annotations

import pytest

from tentalis.envs import get_environment
from tentalis.envs.terminal.tasks import TerminalTasks
from tentalis.events import ScoreEvent
from tentalis.rewards.registry import scorer_for

ENV = "terminal"


def test_suite_is_seeded_and_the_splits_never_share_a_task() -> None:
    env = get_environment(ENV)
    assert env.generate(10, "train", seed=3) == env.generate(10, "train", seed=3)
    assert env.generate(10, "train", seed=3) != env.generate(10, "train", seed=4)
    train = {s.metadata["key"] for s in env.generate(40, "train", seed=1)}
    heldout = {s.metadata["key"] for s in env.generate(15, "heldout", seed=1)}
    assert len(train) == 40 and train.isdisjoint(heldout)
    assert {s.metadata["kind"] for s in env.generate(12, "train")} >= {"count_log", "make_file"}


async def test_every_task_is_solved_by_its_reference_answer(worker_result) -> None:  # type: ignore[no-untyped-def]
    env = TerminalTasks()
    verifier = scorer_for(ENV, "verifier")
    for split in ("train", "heldout"):
        for spec in env.generate(12, split, seed=0):
            task = spec.to_task_event()
            scores = await verifier.score(task, worker_result(task, env.reference_solution(spec)))
            assert scores.outcome_score == 1.0, (spec.metadata["kind"], scores.details)
            assert scores.step_scores and all(s == 1.0 for s in scores.step_scores)


async def test_wrong_failing_and_hostile_commands_score_low(worker_result) -> None:  # type: ignore[no-untyped-def]
    spec = next(s for s in TerminalTasks().generate(12) if s.metadata["kind"] == "count_log")
    task = spec.to_task_event()
    verifier = scorer_for(ENV, "verifier")
    cases = {
        "<step>Guess. <cmd>echo 123456</cmd></step>": [1.0],
        "<step><cmd>no-such-tool app.log</cmd></step>": [0.0],
        "<step>Think only.</step>\nAnswer: 3": [0.5],
        "<step><cmd>curl -s http://example.com</cmd></step><step><cmd>:(){ :|:& };:</cmd></step>":
            None,
    }  # fmt: skip
    for text, steps in cases.items():
        scores = await verifier.score(task, worker_result(task, text))
        assert scores.outcome_score == 0.0, text
        if steps is not None:
            assert scores.step_scores == steps, text


def test_the_worker_prompts_with_the_environment_instructions() -> None:
    from tentalis.envs import build_messages

    task = TerminalTasks().generate(1)[0].to_task_event()
    messages = build_messages(task)
    assert "<cmd>" in messages[0]["content"] and messages[1]["content"] == task.prompt


async def test_suite_runs_end_to_end_with_the_tiny_model(  # type: ignore[no-untyped-def]
    memory_bus, tiny_model_dir, run_suite_end_to_end
) -> None:
    scores = await run_suite_end_to_end(memory_bus, tiny_model_dir, ENV, 3)
    assert len(scores) == 3 and all(isinstance(s, ScoreEvent) for s in scores)
    for s in scores:
        assert s.environment == ENV and s.scorer == ENV and s.error is None
        assert 0.0 <= s.outcome_score <= 1.0 and set(s.components) == {"verifier", "format"}


@pytest.mark.parametrize("bad", ["", "<step><cmd></cmd></step>", "<cmd>" * 500])
async def test_garbage_never_crashes_the_verifier(bad: str, worker_result) -> None:  # type: ignore[no-untyped-def]
    task = TerminalTasks().generate(1)[0].to_task_event()
    scores = await scorer_for(ENV, "default").score(task, worker_result(task, bad))
    assert scores.outcome_score <= 0.1
