"""The judge end to end on real local models: the tiny random Llama (fast) and SmolLM2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tentalis.inference.local import LocalInference
from tentalis.rewards.judge import JudgeConfig, JudgeScorer

TEXT = "<step>12 + 7 = 19</step>\n<step>19 + 1 = 21</step>\nAnswer: 21"


async def test_tiny_model_judge_never_crashes(tiny_model_dir: Path, make_result) -> None:
    """A random model answers gibberish: every reply is malformed, retried, then neutral."""
    llm = LocalInference(tiny_model_dir, device="cpu", max_batch=16)
    try:
        judge = JudgeScorer(llm, JudgeConfig(votes=2, max_retries=1, max_tokens=6))
        task, result = make_result(TEXT, answer="20")
        s = await judge.score(task, result)
    finally:
        await llm.close()
    assert len(s.step_scores) == 2 and all(0.0 <= x <= 1.0 for x in s.step_scores)
    cost = s.details["cost"]
    assert cost["requests"] == s.details["malformed"] + sum(
        len(st["votes"]) for st in s.details["steps"]) + len(s.details["outcome"]["votes"])
    assert cost["prompt_tokens"] > 0 and cost["completion_tokens"] > 0 and cost["seconds"] > 0
    assert 3 * 2 <= cost["requests"] <= 3 * 2 * 2  # bounded by votes × (retries + 1)


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    from tentalis.models import SMOLLM2_ALIAS, ModelStore

    home = os.environ.get("TENTALIS_HOME") or Path.home() / ".cache" / "tentalis-test"
    return ModelStore(home).resolve(SMOLLM2_ALIAS)


@pytest.mark.slow
async def test_smollm2_judge_answers_in_format(smollm2_dir: Path, make_result) -> None:
    """The few-shot prompt gets parseable verdicts from the 135M model (greedy, one vote)."""
    llm = LocalInference(smollm2_dir, device="cpu", max_batch=8)
    try:
        judge = JudgeScorer(llm, JudgeConfig(votes=1, max_retries=0, max_tokens=12))
        task, result = make_result(TEXT, answer="20")
        s = await judge.score(task, result)
    finally:
        await llm.close()
    assert s.details["cost"]["requests"] == 3
    assert s.details["malformed"] == 0, s.details
    assert all(x in (0.0, 1.0) for x in [*s.step_scores, s.outcome_score])
