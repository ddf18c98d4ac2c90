"""Judge calibration: score results with the judge and the verifier, and compare.

1. results: worker answers to tasks with ground truth, generated with the local model
   (:func:`generate_results`, seeded sampling so that some are wrong); written solutions
   with planted slips (:func:`reference_results`: balanced labels, every arithmetic step
   checkable — a 135M worker rarely writes ``<step>`` tags before training); or read back
   from a JSONL file of ResultEvents (:func:`read_results`; every run writes one).
2. :func:`judge_against_verifier` scores every result with both. Pairs kept:
   *steps* where the verifier has an opinion — 1 when every arithmetic claim in the step
   holds, 0 when one is false; steps without a checkable claim (verifier 0.5) have no
   ground truth and are left out — and *outcomes* of results with a final answer (a result
   without one is not shown to the judge, so comparing it would flatter the judge).
3. :class:`~tentalis.rewards.calibration.Agreement` turns the pairs into accuracy,
   Spearman ρ and ECE; :mod:`tentalis.rewards.calibration_report` writes them down.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tentalis.agents.environments import get_environment
from tentalis.agents.worker import build_messages, result_from_completion
from tentalis.errors import ConfigError
from tentalis.events import ResultEvent, TaskEvent
from tentalis.inference.base import ChatRequest, InferenceClient
from tentalis.rewards.calibration import Agreement
from tentalis.rewards.judge import JudgeScorer
from tentalis.rewards.verifiers import MathVerifier


def calibration_tasks(
    n: int, *, level: str, seed: int, environment: str = "math"
) -> list[TaskEvent]:
    """``n`` held-out tasks with ground truth (the same ones for the same seed)."""
    specs = get_environment(environment).generate(n, split="heldout", seed=seed, level=level)
    return [s.to_task_event() for s in specs]


async def generate_results(
    inference: InferenceClient,
    tasks: Sequence[TaskEvent],
    *,
    samples: int = 1,
    temperature: float = 0.7,
    max_new_tokens: int = 64,
    seed: int = 0,
) -> list[ResultEvent]:
    """``samples`` sampled answers per task, exactly as a worker would produce them."""
    requests, keys = [], []
    for i, task in enumerate(tasks):
        for k in range(samples):
            requests.append(ChatRequest(build_messages(task), max_tokens=max_new_tokens,
                                        temperature=temperature, seed=seed * 100_003 + i * 31 + k))
            keys.append(task)
    completions = await inference.chat(requests)
    return [
        result_from_completion(task.model_copy(update={"sample_index": k % samples}), c,
                               worker_id="calibrate", session_id="")
        for k, (task, c) in enumerate(zip(keys, completions, strict=True))
    ]


def reference_results(tasks: Sequence[TaskEvent], *, seed: int = 0) -> list[ResultEvent]:
    """Two written solutions per math task: a right one, and one with a planted slip.

    Steps: a sentence naming the numbers (no claim: the verifier is neutral on it), then
    one ``a op b = r`` step per operation. In the planted one a random operation's result
    is off by 1 to 3 and the error carries on to the answer, so the verifier marks exactly
    that step (and the outcome) wrong. Labels are balanced, unlike a weak worker's answers.
    """
    import random

    from tentalis.agents.environments.math import apply

    def solution(ops: list[str], operands: list[int], slip_at: int, slip: int) -> list[str]:
        steps, value = [f"The numbers are {', '.join(map(str, operands))}."], operands[0]
        for i, (op, x) in enumerate(zip(ops, operands[1:], strict=True)):
            new = apply(op, value, x) + (slip if i == slip_at else 0)
            steps.append(f"{value} {op} {x} = {new}")
            value = new
        return [*steps, str(value)]

    rng = random.Random(seed)
    out = []
    for task in tasks:
        ops, operands = task.metadata["ops"], task.metadata["operands"]
        slip = rng.choice([-3, -2, -1, 1, 2, 3])
        try:
            planted = solution(ops, operands, rng.randrange(len(ops)), slip)
        except ValueError:  # the slip made a later division inexact: slip at the last op
            planted = solution(ops, operands, len(ops) - 1, slip)
        for *steps, answer in (solution(ops, operands, -1, 0), planted):
            text = "".join(f"<step>{st}</step>\n" for st in steps) + f"Answer: {answer}"
            out.append(ResultEvent(
                task_id=task.task_id, task=task, worker_id="reference", raw_text=text,
                steps=steps, final_answer=answer, parse_status="ok"))
    return out


def write_results(path: Path, results: Sequence[ResultEvent]) -> None:
    path.write_text("".join(r.model_dump_json() + "\n" for r in results), encoding="utf-8")


def read_results(path: Path) -> list[ResultEvent]:
    """ResultEvents from a JSONL file (one per line); a bad line is a ConfigError naming it."""
    if not path.is_file():
        raise ConfigError(f"results file {path} does not exist")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(ResultEvent.model_validate_json(line))
        except ValueError as exc:
            raise ConfigError(f"{path}:{n} is not a ResultEvent: {str(exc)[:200]}") from None
    if not out:
        raise ConfigError(f"results file {path} holds no results")
    return out


@dataclass
class CalibrationData:
    """The (judge score, verifier label) pairs of a run and what the judging cost."""

    step_scores: list[float] = field(default_factory=list)
    step_labels: list[int] = field(default_factory=list)
    outcome_scores: list[float] = field(default_factory=list)
    outcome_labels: list[int] = field(default_factory=list)
    results: int = 0
    steps_total: int = 0
    no_answer: int = 0
    judgements: int = 0
    malformed: int = 0
    unjudged: int = 0
    judge_seconds: float = 0.0
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def steps(self) -> Agreement:
        return Agreement.of(self.step_scores, self.step_labels)

    @property
    def outcomes(self) -> Agreement:
        return Agreement.of(self.outcome_scores, self.outcome_labels)

    @property
    def parse_rate(self) -> float:
        """Share of the judge's replies that parsed (retries included)."""
        return (self.judgements - self.malformed) / self.judgements if self.judgements else 0.0


async def judge_against_verifier(
    judge: JudgeScorer, results: Sequence[ResultEvent], *, batch: int = 16
) -> CalibrationData:
    """Score ``results`` with ``judge`` (``batch`` results per call) and the MathVerifier."""
    verifier = MathVerifier()
    data = CalibrationData(results=len(results))
    t0 = time.perf_counter()
    judged = []
    for lo in range(0, len(results), batch):
        chunk = results[lo : lo + batch]
        judged += await judge.score_batch([(r.task, r) for r in chunk])
    data.judge_seconds = time.perf_counter() - t0
    for r, j in zip(results, judged, strict=True):
        v = await verifier.score(r.task, r)
        data.steps_total += len(r.steps)
        data.judgements += j.details["cost"]["requests"]
        data.malformed += j.details["malformed"]
        data.unjudged += len(j.details["unjudged"])
        for step_v, step_j in zip(v.step_scores, j.step_scores, strict=True):
            if step_v != 0.5:
                data.step_scores.append(step_j)
                data.step_labels.append(int(step_v))
        if r.final_answer is None:
            data.no_answer += 1
        else:
            data.outcome_scores.append(j.outcome_score)
            data.outcome_labels.append(int(v.outcome_score))
        data.rows.append({"task_id": r.task_id, "steps": r.steps, "answer": r.final_answer,
                          "expected": r.task.answer, "verifier_steps": v.step_scores,
                          "judge_steps": j.step_scores, "verifier_outcome": v.outcome_score,
                          "judge_outcome": j.outcome_score, "judge": j.details})
    return data
