"""JudgeScorer with a scripted judge: batching, votes, bounded retries, cost, failures."""

from __future__ import annotations

import pytest

from tentalis.errors import ScoringError
from tentalis.rewards.judge import JudgeConfig, JudgeScorer

TEXT = "<step>3 + 4 = 7</step>\n<step>7 + 1 = 9</step>\nAnswer: 7"


def last_user(req) -> str:  # type: ignore[no-untyped-def]
    return req.messages[-1]["content"]


def truthful(req) -> str:  # type: ignore[no-untyped-def]
    text = last_user(req)
    ok = "3 + 4 = 7" in text or "Final answer: 7" in text
    return "Verdict: correct\nReason: adds up" if ok else "Verdict: wrong\nReason: 7 + 1 is 8"


async def test_scores_every_step_and_the_outcome(make_result, scripted_inference) -> None:
    llm = scripted_inference(truthful)
    task, result = make_result(TEXT)
    s = await JudgeScorer(llm).score(task, result)
    assert s.step_scores == [1.0, 0.0]
    assert s.outcome_score == 1.0
    assert s.details["steps"][1]["reason"] == "7 + 1 is 8"
    assert s.details["malformed"] == 0 and s.details["unjudged"] == []
    cost = s.details["cost"]
    assert cost["requests"] == 3 and cost["calls"] == 1
    assert cost["prompt_tokens"] == 9 and cost["completion_tokens"] > 0
    assert all(r.temperature == 0.0 for r in llm.requests)  # one vote: greedy


async def test_a_batch_of_results_is_one_chat_call(make_result, scripted_inference) -> None:
    llm = scripted_inference(truthful)
    pairs = [make_result(TEXT), make_result("<step>3 + 4 = 7</step>\nAnswer: 7")]
    scores = await JudgeScorer(llm, JudgeConfig(votes=3)).score_batch(pairs)
    assert llm.calls == 1 and len(llm.requests) == (3 + 2) * 3
    assert [s.step_scores for s in scores] == [[1.0, 0.0], [1.0]]
    assert {r.seed for r in llm.requests} == {0, 1, 2}  # votes differ by seed
    one_per_call = scripted_inference(truthful)
    await JudgeScorer(one_per_call, JudgeConfig(max_requests_per_call=1)).score_batch(pairs)
    assert one_per_call.calls == 5


async def test_majority_vote_records_agreement(make_result, scripted_inference) -> None:
    llm = scripted_inference(lambda r: "Verdict: wrong" if r.seed == 2 else "Verdict: correct")
    task, result = make_result(TEXT)
    s = await JudgeScorer(llm, JudgeConfig(votes=3)).score(task, result)
    assert s.step_scores == [1.0, 1.0]
    assert s.details["steps"][0]["agreement"] == pytest.approx(2 / 3)
    assert s.details["steps"][0]["votes"] == [1.0, 1.0, 0.0]
    mean = await JudgeScorer(llm, JudgeConfig(votes=3, aggregate="mean")).score(task, result)
    assert mean.step_scores == [pytest.approx(2 / 3)] * 2


async def test_malformed_is_retried_then_recorded(make_result, scripted_inference) -> None:
    # the first round is garbage, the retry (seed >= 1009) answers properly
    llm = scripted_inference(lambda r: "Score: 42" if r.seed < 1009 else "Verdict: correct")
    task, result = make_result(TEXT)
    s = await JudgeScorer(llm).score(task, result)
    assert s.step_scores == [1.0, 1.0] and s.details["malformed"] == 3
    assert "out of range" in s.details["steps"][0]["malformed"][0]
    assert llm.calls == 2 and llm.requests[-1].temperature > 0  # retry samples


async def test_retries_are_bounded(make_result, scripted_inference) -> None:
    llm = scripted_inference(lambda r: "I think so!")
    task, result = make_result(TEXT)
    s = await JudgeScorer(llm, JudgeConfig(max_retries=2, votes=2)).score(task, result)
    assert llm.calls == 3
    assert s.step_scores == [0.5, 0.5] and s.outcome_score == 0.5
    assert s.details["unjudged"] == [0, 1, "outcome"]
    assert s.details["malformed"] == 3 * 2 * 3


async def test_nothing_to_judge_costs_nothing(make_result, scripted_inference) -> None:
    llm = scripted_inference(truthful)
    task, result = make_result("<step>3 + 4 = 7</step>", steps=["  ", "3 + 4 = 7"],
                               final_answer=None)
    s = await JudgeScorer(llm).score(task, result)
    assert s.step_scores == [0.0, 1.0] and s.outcome_score == 0.0  # empty step; no answer
    assert len(llm.requests) == 1


async def test_inference_failure(make_result, scripted_inference) -> None:
    task, result = make_result(TEXT)
    flaky = scripted_inference(truthful, fail_times=1)
    s = await JudgeScorer(flaky).score(task, result)
    assert s.step_scores == [1.0, 0.0]  # the failed round was retried
    down = scripted_inference(truthful, fail_times=99)
    with pytest.raises(ScoringError, match="failed on every try"):
        await JudgeScorer(down, JudgeConfig(max_retries=1)).score(task, result)


def test_judge_from_settings_and_registry(scripted_inference) -> None:
    from tentalis.config import load_settings
    from tentalis.rewards import scorer_for
    from tentalis.rewards.judge_factory import (
        judge_config,
        judge_from_settings,
        judge_settings,
        use_judge_inference,
    )

    settings = load_settings(judge_votes=3, judge_aggregate="mean", judge_model="other",
                             judge_backend="openai", judge_base_url="http://judge:8000/v1")
    assert judge_config(settings).votes == 3 and judge_config(settings).aggregate == "mean"
    js = judge_settings(settings)
    assert (js.inference.backend, js.inference.model) == ("openai", "other")
    assert js.inference.base_url == "http://judge:8000/v1"
    llm = scripted_inference(truthful)
    use_judge_inference(llm)
    try:
        assert judge_from_settings(settings).inference is llm
        judge = scorer_for("chat", "judge")  # any environment, no registration needed
        assert isinstance(judge, JudgeScorer) and judge.inference is llm
    finally:
        use_judge_inference(None)
