"""CombinedScorer: profiles from TOML, weights combined as documented, missing components."""

from __future__ import annotations

from pathlib import Path

import pytest

from tentalis.errors import ConfigError, ScoringError
from tentalis.events import ResultEvent, TaskEvent
from tentalis.rewards import scorer_for
from tentalis.rewards.base import StepScores
from tentalis.rewards.combined import CombinedScorer
from tentalis.rewards.profiles import available_profiles, load_profile, shipped_profiles
from tentalis.rewards.service import ScorerService

TEXT = "<step>3 + 4 = 7</step>\n<step>7 + 1 = 9</step>\nAnswer: 7"


class Fixed:
    """A scorer double with fixed scores."""

    def __init__(self, name: str, steps: list[float], outcome: float) -> None:
        self.name, self.steps, self.outcome = name, steps, outcome

    async def score(self, task: TaskEvent, result: ResultEvent) -> StepScores:
        return StepScores(list(self.steps), self.outcome)


class Broken:
    name = "judge"

    async def score(self, task: TaskEvent, result: ResultEvent) -> StepScores:
        raise RuntimeError("endpoint down")


def test_shipped_profiles_are_documented() -> None:
    assert {"math", "chat", "terminal", "swe", "gui", "default"} <= set(shipped_profiles())
    for name in shipped_profiles():
        p = load_profile(name)
        assert p.description and set(p.why) == set(p.weights), name
    terminal, chat = load_profile("terminal").weights, load_profile("chat").weights
    assert max(terminal, key=terminal.__getitem__) == "verifier"  # execution success
    assert max(chat, key=chat.__getitem__) == "judge"


async def test_combines_as_documented(make_result) -> None:
    task, result = make_result(TEXT)
    judge = Fixed("judge", [1.0, 0.5], 0.5)
    scorer = CombinedScorer("math", components={"judge": judge})  # verifier, format: real
    s = await scorer.score(task, result)
    # math profile 0.7 / 0.1 / 0.2; verifier steps [1, 0] outcome 1; format steps [1, 1] outcome 1
    assert s.outcome_score == pytest.approx(0.7 * 1 + 0.1 * 1 + 0.2 * 0.5)
    assert s.step_scores == pytest.approx([0.7 + 0.1 + 0.2, 0.0 + 0.1 + 0.2 * 0.5])
    assert s.details["weights"] == pytest.approx({"verifier": 0.7, "format": 0.1, "judge": 0.2})
    assert scorer.name == "combined:math" and s.details["dropped"] == {}


async def test_missing_components_are_renormalised(make_result) -> None:
    task, result = make_result(TEXT, answer=None)  # no ground truth: the verifier drops out
    scorer = CombinedScorer("math", components={"judge": Fixed("judge", [0.0, 0.0], 0.0)})
    s = await scorer.score(task, result)
    assert "ground-truth" in s.details["dropped"]["verifier"]
    assert s.details["weights"] == pytest.approx({"format": 1 / 3, "judge": 2 / 3})
    assert s.outcome_score == pytest.approx(1 / 3)
    broken = CombinedScorer("math", components={"judge": Broken()})
    s = await broken.score(*make_result(TEXT))
    assert "endpoint down" in s.details["dropped"]["judge"]
    assert s.details["weights"] == pytest.approx({"verifier": 0.875, "format": 0.125})


async def test_nothing_left_raises_and_the_service_records_it(make_result, memory_bus) -> None:
    only_judge = load_profile("chat")
    scorer = CombinedScorer("math", only_judge, components={"judge": Broken(),
                                                            "format": Broken()})
    task, result = make_result(TEXT)
    with pytest.raises(ScoringError, match="no component"):
        await scorer.score(task, result)
    service = ScorerService(memory_bus, lambda env, spec: scorer)
    event = await service.score(result.model_copy(update={"task": task.model_copy(
        update={"metadata": {"profile": "chat"}})}))
    assert event.error and "no component" in event.error and event.outcome_score == 0.0


async def test_profile_per_task_and_user_profile(make_result, tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "strict.toml").write_text(
        'description = "only the verifier"\n[weights]\nverifier = 1\n')
    assert "strict" in available_profiles(tmp_path)
    scorer = CombinedScorer("math", home=tmp_path, components={"judge": Fixed("judge", [], 0)})
    task, result = make_result(TEXT)
    task = task.model_copy(update={"metadata": {"profile": "strict"}})
    s = await scorer.score(task, result)
    assert s.details["profile"] == "strict" and s.step_scores == [1.0, 0.0]
    with pytest.raises(ScoringError, match="name, not a path"):
        scorer.profile_for(task.model_copy(update={"metadata": {"profile": "/etc/x.toml"}}))
    by_path = CombinedScorer("math", tmp_path / "profiles" / "strict.toml")
    assert by_path.name == "combined:strict"


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ("name = 'x'\n", "needs a [weights] table"),
        ("[weights]\njudge = -1\n", "must be a number >= 0"),
        ("[weights]\njudge = 0\n", "positive sum"),
        ("[weights\n", "not valid TOML"),
    ],
)
def test_bad_profiles_say_what_is_wrong(tmp_path: Path, toml: str, problem: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=problem.replace("[", r"\[")):
        load_profile(path)
    with pytest.raises(ConfigError, match="no scoring profile 'nope'"):
        load_profile("nope", tmp_path)


def test_registry_knows_combined_for_any_environment() -> None:
    assert scorer_for("math", "combined").name == "combined:math"
    assert scorer_for("chat", "combined").name == "combined:chat"
    assert scorer_for("math", "combined:gui").name == "combined:gui"
    assert scorer_for("somewhere", "combined").name == "combined:default"
    assert scorer_for("math").name == "math"  # the default stays what it was
    with pytest.raises(ScoringError, match="known"):
        scorer_for("math", "nope")
