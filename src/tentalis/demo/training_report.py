"""Print and save what the training demo measured (every figure from its report)."""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tentalis.demo.loop import LoopReport
from tentalis.demo.training import TrainingDemoReport
from tentalis.training.metrics import StepMetrics


def step_line(m: StepMetrics) -> str:
    return (f"step {m.step:3d}  reward {m.reward_mean:.3f}±{m.reward_std:.3f}  "
            f"loss {m.loss:+.4f}  clip {m.clip_frac:.3f}  "
            f"{m.step_time_s:.1f} s  {m.tokens_per_s:.0f} tok/s  MFU {100 * m.mfu:.1f}%")


def _acc(r: LoopReport) -> str:
    lo, hi = r.accuracy_ci
    return f"{100 * r.accuracy:.1f}% ({r.correct}/{r.n})  95% CI {100 * lo:.1f}–{100 * hi:.1f}%"


def print_training_report(console: Console, rep: TrainingDemoReport) -> None:
    t = Table(title="held-out accuracy (greedy, strict verifier)", title_justify="left")
    t.add_column("")
    t.add_column("accuracy")
    t.add_column("Answer: line")
    t.add_column("steps + answer")
    for label, r in (("before training", rep.before), ("after training", rep.after)):
        t.add_row(label, _acc(r), f"{r.answer_lines}/{r.n}", f"{r.in_format}/{r.n}")
    console.print(t)
    lo_after, _ = rep.after.accuracy_ci
    _, hi_before = rep.before.accuracy_ci
    verdict = ("better, beyond both intervals" if lo_after > hi_before
               else "better, but the intervals overlap" if rep.after.accuracy > rep.before.accuracy
               else "not better")
    console.print(f"result: {verdict}")
    if rep.steps:
        times = [m.step_time_s for m in rep.steps]
        console.print(
            f"training: {len(rep.steps)} steps in {rep.train_seconds:.0f} s "
            f"({rep.rounds} sampling rounds, {rep.dropped_groups} zero-variance groups "
            f"dropped); median step {statistics.median(times):.1f} s, "
            f"mean MFU {100 * statistics.fmean(m.mfu for m in rep.steps):.1f}%; "
            f"adapter versions hot-swapped: {rep.adapter_versions}"
        )
    if rep.curve is not None:
        console.print(f"learning curve: {rep.curve}")


def save_training_report(path: Path, rep: TrainingDemoReport, config: dict[str, Any]) -> Path:
    data = {
        "command": " ".join(["tentalis", *sys.argv[1:]]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": config,
        "before": {"accuracy": rep.before.accuracy, "correct": rep.before.correct,
                   "n": rep.before.n, "ci95": rep.before.accuracy_ci,
                   "answer_lines": rep.before.answer_lines, "in_format": rep.before.in_format},
        "after": {"accuracy": rep.after.accuracy, "correct": rep.after.correct,
                  "n": rep.after.n, "ci95": rep.after.accuracy_ci,
                  "answer_lines": rep.after.answer_lines, "in_format": rep.after.in_format},
        "steps": [m.as_dict() for m in rep.steps],
        "adapter_versions": rep.adapter_versions,
        "train_seconds": rep.train_seconds,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))
    return path
