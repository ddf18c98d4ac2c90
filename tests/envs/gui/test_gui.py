"""The gui environment: a deterministic form state machine; the final state decides."""

from __future__ import annotations

from tentalis.envs import get_environment
from tentalis.envs.gui.tasks import GuiTasks, form_for
from tentalis.events import ScoreEvent
from tentalis.rewards.registry import scorer_for

ENV = "gui"


def test_suite_is_seeded_and_the_splits_never_share_a_task() -> None:
    env = get_environment(ENV)
    assert env.generate(8, "train", seed=3) == env.generate(8, "train", seed=3)
    train = {s.metadata["key"] for s in env.generate(40, "train", seed=1)}
    heldout = {s.metadata["key"] for s in env.generate(10, "heldout", seed=1)}
    assert len(train) == 40 and train.isdisjoint(heldout)


def test_the_form_state_machine() -> None:
    form = form_for("signup")
    assert form.apply("click plan") is None and form.focus == "plan"
    assert form.apply('type "Ada L"') is not None  # focus is a drop-down, not a text field
    assert form.apply("submit") is None and not form.submitted and "Full name" in form.render()
    assert form.apply('type name "Ada L"') is None and form.apply("select plan team") is None
    assert form.apply("click Email") is None and form.apply("type a@b.org") is None
    assert form.apply("click newsletter") is None and form.values["newsletter"] is True
    assert form.apply("select plan Gold") is not None and form.apply("fly away") is not None
    assert form.apply("click submit") is None and form.submitted
    assert form.values == {"name": "Ada L", "email": "a@b.org", "plan": "Team", "newsletter": True}
    assert form.apply("click cancel") is not None  # closed after submitting


async def test_every_task_is_solved_by_its_reference_actions(worker_result) -> None:  # type: ignore[no-untyped-def]
    env = GuiTasks()
    verifier = scorer_for(ENV, "verifier")
    for split in ("train", "heldout"):
        for spec in env.generate(12, split, seed=0):
            task = spec.to_task_event()
            scores = await verifier.score(task, worker_result(task, env.reference_solution(spec)))
            assert scores.outcome_score == 1.0, scores.details
            assert all(s == 1.0 for s in scores.step_scores)


async def test_wrong_values_unsubmitted_and_invalid_actions_score_low(worker_result) -> None:  # type: ignore[no-untyped-def]
    env = GuiTasks()
    spec = next(s for s in env.generate(10) if s.metadata["form"] == "shipping")
    task = spec.to_task_event()
    verifier = scorer_for(ENV, "verifier")
    reference = env.reference_solution(spec)
    unsubmitted = reference.replace("<step><action>submit</action></step>", "")
    wrong_city = reference.replace(spec.metadata["target"]["city"], "Atlantis")
    for text in (unsubmitted, wrong_city, "<step><action>click nowhere</action></step>", ""):
        scores = await verifier.score(task, worker_result(task, text))
        assert scores.outcome_score == 0.0, text
    nowhere = "<step><action>click nowhere</action></step>"
    bad = await verifier.score(task, worker_result(task, nowhere))
    assert bad.step_scores == [0.0]


async def test_suite_runs_end_to_end_with_the_tiny_model(  # type: ignore[no-untyped-def]
    memory_bus, tiny_model_dir, run_suite_end_to_end
) -> None:
    scores = await run_suite_end_to_end(memory_bus, tiny_model_dir, ENV, 3)
    assert len(scores) == 3 and all(isinstance(s, ScoreEvent) for s in scores)
    assert all(s.scorer == ENV and s.error is None for s in scores)
