"""The judge next to the verifier: per-step scores of held-out results, side by side.

Both scorers read the same ResultEvents that came back through the loop; the verifier is
:class:`MathVerifier` (the evaluation metric), the judge is :class:`JudgeScorer`. Every
number in the table is computed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.table import Table

from tentalis.agents.manager import TaskOutcome
from tentalis.envs.math.verifier import MathVerifier
from tentalis.events import ResultEvent
from tentalis.rewards.base import StepScores
from tentalis.rewards.judge import JudgeScorer
from tentalis.steps.parsing import find_step_blocks


@dataclass
class JudgedResult:
    """One result with both verdicts."""

    result: ResultEvent
    verifier: StepScores
    judge: StepScores


MAX_LINE_STEPS = 6


def with_line_steps(result: ResultEvent) -> ResultEvent:
    """``result`` itself, or — when the worker wrote no ``<step>`` blocks (an untrained
    model often does not) — a copy whose steps are the answer's first non-empty lines, so
    both scorers still have steps to score. The table marks such steps as lines."""
    if result.steps:
        return result
    lines = [ln.strip() for ln in result.raw_text.splitlines() if ln.strip()]
    return result.model_copy(update={"steps": lines[:MAX_LINE_STEPS]})


async def judge_results(judge: JudgeScorer, results: Sequence[ResultEvent]) -> list[JudgedResult]:
    """Score ``results`` with the judge (one batch) and the verifier (see
    :func:`with_line_steps` for answers without steps)."""
    results = [with_line_steps(r) for r in results]
    verdicts = await judge.score_batch([(r.task, r) for r in results])
    verifier = MathVerifier()
    return [JudgedResult(r, await verifier.score(r.task, r), j)
            for r, j in zip(results, verdicts, strict=True)]


def scored_results(outcomes: Sequence[TaskOutcome], limit: int) -> list[ResultEvent]:
    """The first ``limit`` results that came back with a ground-truth task."""
    out = []
    for o in outcomes:
        if o.score is not None and o.score.result.task.answer is not None:
            out.append(o.score.result)
        if len(out) >= limit:
            break
    return out


def _pair(v: float, j: float, info: dict | None) -> tuple[str, str, str]:
    agreement = (info or {}).get("agreement")
    judge = f"{j:.2f}" + (f" ({agreement:.0%})" if agreement is not None else "")
    return f"{v:.2f}", judge, str((info or {}).get("reason", ""))[:60]


def comparison_table(rows: Sequence[JudgedResult]) -> Table:
    """Each step's text with its verifier and judge scores; one outcome line per result."""
    t = Table(title="Per-step scores: verifier vs judge (agreement of the judge's votes)",
              title_justify="left")
    t.add_column("task", overflow="fold", max_width=26)
    t.add_column("step", justify="right")
    t.add_column("text", overflow="fold", max_width=48)
    t.add_column("verifier", justify="right")
    t.add_column("judge", justify="right")
    t.add_column("judge's reason", overflow="fold", max_width=36)
    for row in rows:
        r, steps_info = row.result, row.judge.details.get("steps", [])
        label = "line {}" if not find_step_blocks(r.raw_text) else "{}"
        for i, text in enumerate(r.steps):
            v, j, reason = _pair(row.verifier.step_scores[i], row.judge.step_scores[i],
                                 steps_info[i] if i < len(steps_info) else None)
            t.add_row(r.task.prompt[:70] if i == 0 else "", label.format(i + 1),
                      text.strip().replace("\n", " ")[:120], v, j, reason)
        v, j, reason = _pair(row.verifier.outcome_score, row.judge.outcome_score,
                             row.judge.details.get("outcome"))
        t.add_row(r.task.prompt[:70] if not r.steps else "", "answer",
                  f"{r.final_answer} (expected {r.task.answer})", v, j, reason,
                  end_section=True)
    return t


def cost_line(rows: Sequence[JudgedResult]) -> str:
    """What judging these results cost, summed from each result's ``details["cost"]``."""
    costs = [row.judge.details.get("cost", {}) for row in rows]
    steps = sum(len(row.result.steps) for row in rows)
    total = {k: sum(c.get(k, 0) for c in costs)
             for k in ("requests", "prompt_tokens", "completion_tokens", "seconds")}
    malformed = sum(row.judge.details.get("malformed", 0) for row in rows)
    return (f"judge: {len(rows)} results, {steps} steps, {total['requests']} requests "
            f"({malformed} malformed), {total['prompt_tokens']} prompt + "
            f"{total['completion_tokens']} completion tokens, {total['seconds']:.1f} s")
