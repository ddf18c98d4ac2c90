"""``JudgeScorer``: a process-reward LLM judge that scores every ``<step>`` of a result.

For each result it asks the judge about each step (is it correct?) and about the final
answer (the outcome), ``votes`` times each with different seeds, and aggregates the votes
(:mod:`tentalis.rewards.voting`). Each vote is one chat request; all requests of a batch of
results go to the inference client in one ``chat`` call (``max_requests_per_call`` splits
it for endpoints that want fewer), so a local model decodes them as batches.

A reply that does not parse (:mod:`tentalis.rewards.judge_parsing`) is recorded as
malformed and asked again — with a fresh seed, at ``temperature`` — at most
``max_retries`` more rounds; all malformed items of a round are retried together. An item
with no valid vote after that gets the neutral 0.5 and is listed in
``details["unjudged"]``. An empty step scores 0 without a call; a result without a final
answer has outcome 0. When the inference client itself fails on every round the judge
raises :class:`ScoringError` (the scorer service records it): a judge that cannot run
must not pass for a neutral one.

``details["cost"]`` is what this result cost: its requests, chat calls it took part in,
prompt and completion tokens, and its share of the wall seconds of those calls.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tentalis.config.judge import JudgeConfig
from tentalis.errors import ScoringError
from tentalis.events import ResultEvent, TaskEvent
from tentalis.inference.base import ChatRequest, InferenceClient, Message
from tentalis.rewards.base import StepScores
from tentalis.rewards.judge_parsing import parse_judgement
from tentalis.rewards.judge_prompt import answer_messages, step_messages
from tentalis.rewards.voting import aggregate_votes
from tentalis.steps.answers import final_answer_of

NEUTRAL = 0.5


@dataclass
class _Item:
    """One thing to judge: a step (``step >= 0``) or the final answer (``step == -1``)."""

    result: int
    step: int
    messages: list[Message]
    votes: list[float] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)


@dataclass
class _Cost:
    requests: int = 0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "calls": self.calls,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "seconds": round(self.seconds, 4)}


class JudgeScorer:
    """Scores steps and outcome with an LLM judge; see the module docstring."""

    def __init__(
        self, inference: InferenceClient, config: JudgeConfig | None = None, *, name: str = "judge"
    ) -> None:
        self.inference = inference
        self.config = config or JudgeConfig()
        self.name = name

    async def score(self, task: TaskEvent, result: ResultEvent) -> StepScores:
        """Judge one result (all its steps and votes in one ``chat`` call)."""
        return (await self.score_batch([(task, result)]))[0]

    async def score_batch(self, pairs: Sequence[tuple[TaskEvent, ResultEvent]]) -> list[StepScores]:
        """Judge many results together: every step × vote of every result per round."""
        items: list[_Item] = []
        for r, (task, result) in enumerate(pairs):
            for j, step in enumerate(result.steps):
                if step.strip():
                    items.append(_Item(r, j, step_messages(task.prompt, step)))
            answer = final_answer_of(result)
            if answer is not None and answer.strip():
                items.append(_Item(r, -1, answer_messages(task.prompt, answer)))
        costs = [_Cost() for _ in pairs]
        errors = await self._judge(items, costs)
        return [self._scores(r, result, items, costs[r], errors)
                for r, (_, result) in enumerate(pairs)]

    # --- asking -------------------------------------------------------------------------
    async def _judge(self, items: list[_Item], costs: list[_Cost]) -> list[str]:
        """Ask until every vote parsed or the retries are spent; the inference errors seen."""
        c = self.config
        pending = [(i, k) for i in range(len(items)) for k in range(c.votes)]
        errors: list[str] = []
        for attempt in range(c.max_retries + 1):
            if not pending:
                return errors
            greedy = c.votes == 1 and attempt == 0
            requests = [
                ChatRequest(items[i].messages, max_tokens=c.max_tokens,
                            temperature=0.0 if greedy else c.temperature,
                            seed=c.seed + 1009 * attempt + k, adapter=c.adapter,
                            logprobs=False)
                for i, k in pending
            ]
            failed: list[tuple[int, int]] = []
            step = c.max_requests_per_call or len(requests)
            for lo in range(0, len(requests), step):
                chunk, keys = requests[lo : lo + step], pending[lo : lo + step]
                t0 = time.perf_counter()
                try:
                    completions = await self.inference.chat(chunk)
                except Exception as exc:  # an endpoint down is retried like a bad reply
                    errors.append(f"{type(exc).__name__}: {exc}")
                    failed += keys
                    continue
                seconds = time.perf_counter() - t0
                involved = {items[i].result for i, _ in keys}
                for (i, k), completion in zip(keys, completions, strict=True):
                    cost = costs[items[i].result]
                    cost.requests += 1
                    cost.prompt_tokens += len(completion.prompt_token_ids)
                    cost.completion_tokens += len(completion.completion_token_ids)
                    cost.seconds += seconds / len(chunk)
                    judgement = parse_judgement(completion.text)
                    if judgement.score is None:
                        items[i].malformed.append(judgement.malformed or "malformed")
                        failed.append((i, k))
                    else:
                        items[i].votes.append(judgement.score)
                        items[i].reasons.append(judgement.reason)
                for r in involved:
                    costs[r].calls += 1
            pending = failed
        if errors and items and all(not it.votes for it in items):
            raise ScoringError(
                f"judge {self.inference.model_name!r} failed on every try: {errors[-1]}"
            )
        return errors

    # --- aggregating --------------------------------------------------------------------
    def _scores(
        self, r: int, result: ResultEvent, items: list[_Item], cost: _Cost, errors: list[str]
    ) -> StepScores:
        mine = [it for it in items if it.result == r]
        by_step = {it.step: it for it in mine}
        steps, per_step, unjudged = [], [], []
        for j in range(len(result.steps)):
            it = by_step.get(j)
            score, info = self._aggregate(it, empty_score=0.0)
            if info.get("unjudged"):
                unjudged.append(j)
            steps.append(score)
            per_step.append(info)
        outcome, outcome_info = self._aggregate(by_step.get(-1), empty_score=0.0)
        if outcome_info.get("unjudged"):
            unjudged.append("outcome")
        return StepScores(
            step_scores=steps,
            outcome_score=outcome,
            details={
                "judge_model": self.inference.model_name,
                "votes": self.config.votes,
                "aggregate": self.config.aggregate,
                "steps": per_step,
                "outcome": outcome_info,
                "malformed": sum(len(it.malformed) for it in mine),
                "unjudged": unjudged,
                "inference_errors": errors[-3:],
                "cost": cost.as_dict(),
            },
        )

    def _aggregate(self, item: _Item | None, *, empty_score: float) -> tuple[float, dict[str, Any]]:
        if item is None:  # an empty step, or no final answer: nothing to ask
            return empty_score, {"score": empty_score, "reason": "nothing to judge"}
        vote = aggregate_votes(item.votes, self.config.aggregate)
        info: dict[str, Any] = {"votes": list(item.votes), "malformed": list(item.malformed)}
        if vote is None:
            return NEUTRAL, info | {"score": NEUTRAL, "unjudged": True,
                                    "reason": "no parseable judgement"}
        side = vote.score >= 0.5  # a reason given by a vote on the winning side
        reason = next((t for s, t in zip(item.votes, item.reasons, strict=True)
                       if (s >= 0.5) == side and t), "")
        return vote.score, info | {"score": vote.score, "agreement": vote.agreement,
                                   "reason": reason}
