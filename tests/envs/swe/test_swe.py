"""The swe environment: seeded one-bug repositories; the tests decide; end to end."""

from __future__ import annotations

from tentalis.envs import get_environment
from tentalis.envs.swe.tasks import SweTasks
from tentalis.events import ScoreEvent
from tentalis.rewards.registry import scorer_for

ENV = "swe"


def test_suite_is_seeded_and_the_splits_never_share_a_task() -> None:
    env = get_environment(ENV)
    assert env.generate(6, "train", seed=3) == env.generate(6, "train", seed=3)
    train = {s.metadata["key"] for s in env.generate(30, "train", seed=1)}
    heldout = {s.metadata["key"] for s in env.generate(10, "heldout", seed=1)}
    assert len(train) == 30 and train.isdisjoint(heldout)


async def test_every_task_is_fixed_by_its_reference_patch_and_fails_unpatched(  # type: ignore[no-untyped-def]
    worker_result,
) -> None:
    env = SweTasks()
    verifier = scorer_for(ENV, "verifier")
    specs = env.generate(6, "train", seed=0) + env.generate(6, "heldout", seed=0)
    assert {s.metadata["template"] for s in specs} == {
        "clamp", "factorial", "average", "count_words", "is_leap", "discount"}  # fmt: skip
    for spec in specs:
        task = spec.to_task_event()
        fixed = await verifier.score(task, worker_result(task, env.reference_solution(spec)))
        assert fixed.outcome_score == 1.0, (spec.metadata["template"], fixed.details)
        [module] = spec.metadata["editable"]
        buggy = f'<file path="{module}">\n{spec.metadata["files"][module]}</file>'
        assert (await verifier.score(task, worker_result(task, buggy))).outcome_score == 0.0


async def test_editing_the_tests_is_refused(worker_result) -> None:  # type: ignore[no-untyped-def]
    spec = SweTasks().generate(1)[0]
    task = spec.to_task_event()
    [test_file] = spec.metadata["tests"]
    hack = f'<file path="{test_file}">\nimport unittest\n</file>'
    scores = await scorer_for(ENV, "verifier").score(task, worker_result(task, hack))
    assert scores.outcome_score == 0.0 and scores.details["rejected_paths"] == [test_file]


async def test_a_fenced_block_counts_as_the_module(worker_result) -> None:  # type: ignore[no-untyped-def]
    spec = SweTasks().generate(1, seed=5)[0]
    task = spec.to_task_event()
    text = f"<step>Fix it.</step>\n```python\n{spec.answer}```"
    scores = await scorer_for(ENV, "verifier").score(task, worker_result(task, text))
    assert scores.outcome_score == 1.0 and scores.step_scores == [0.5]


async def test_suite_runs_end_to_end_with_the_tiny_model(  # type: ignore[no-untyped-def]
    memory_bus, tiny_model_dir, run_suite_end_to_end
) -> None:
    scores = await run_suite_end_to_end(memory_bus, tiny_model_dir, ENV, 2)
    assert len(scores) == 2 and all(isinstance(s, ScoreEvent) for s in scores)
    assert all(s.scorer == ENV and s.error is None for s in scores)
