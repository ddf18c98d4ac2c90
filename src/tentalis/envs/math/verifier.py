"""``MathVerifier``: the strict math reward and the evaluation metric (the same code, so the
two cannot drift apart)."""

from __future__ import annotations

from tentalis.envs.math.arithmetic import claim_score, find_claims
from tentalis.events import ResultEvent, TaskEvent
from tentalis.rewards.base import StepScores, ground_truth
from tentalis.steps.answers import answers_match, final_answer_of


class MathVerifier:
    """Strict math reward: is the final answer right, and is each step's arithmetic right?

    * outcome: 1.0 when the final answer equals the ground truth (:func:`answers_match`),
      else 0.0 (also when there is no final answer).
    * step ``i``: 1.0 when every arithmetic claim in it holds (``12 + 7 = 19``), 0.0 when
      any claim is false, 0.5 (neutral) when it makes no checkable claim — a step of prose
      is neither rewarded nor punished. See :mod:`tentalis.envs.math.arithmetic`.

    A task without a ground-truth answer raises :class:`ScoringError` (a task problem, not
    a worker's); bad worker output only ever lowers the scores.
    """

    name = "verifier"

    async def score(self, task: TaskEvent, result: ResultEvent) -> StepScores:
        truth = ground_truth(task, self.name)
        answer = final_answer_of(result)
        correct = answers_match(answer, truth)
        claims = [find_claims(step) for step in result.steps]
        return StepScores(
            step_scores=[claim_score(step) for step in result.steps],
            outcome_score=1.0 if correct else 0.0,
            details={
                "correct": correct,
                "final_answer": answer,
                "expected": truth,
                "claims_checked": sum(len(c) for c in claims),
                "claims_false": sum(not x.correct for c in claims for x in c),
            },
        )
