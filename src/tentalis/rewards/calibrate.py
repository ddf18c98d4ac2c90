"""Judge calibration: score results with the judge and the verifier, and compare.

1. results: worker answers to tasks with ground truth, generated with the local model
   (:func:`tentalis.envs.answering.generate_results`, seeded sampling so that some are
   wrong); written solutions with planted slips
   (:func:`tentalis.envs.math.calibration.reference_results`: balanced labels, every
   arithmetic step checkable — a 135M worker rarely writes ``<step>`` tags before
   training); or read back from a JSONL file of ResultEvents (:func:`read_results`; every
   run writes one).
2. :func:`judge_against_verifier` scores every result with both; the verifier is the
   environment's ``verifier`` scorer, found through the registry
   (:func:`~tentalis.rewards.registry.scorer_for`). Pairs kept:
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

from tentalis.errors import ConfigError
from tentalis.events import ResultEvent
from tentalis.rewards.base import StepScorer
from tentalis.rewards.calibration import Agreement
from tentalis.rewards.judge import JudgeScorer
from tentalis.rewards.registry import scorer_for


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
    judge: JudgeScorer,
    results: Sequence[ResultEvent],
    *,
    batch: int = 16,
    environment: str = "math",
    verifier: StepScorer | None = None,
) -> CalibrationData:
    """Score ``results`` with ``judge`` (``batch`` results per call) and with ``verifier``
    (default: the ``verifier`` scorer registered for ``environment``)."""
    verifier = verifier or scorer_for(environment, "verifier")
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
