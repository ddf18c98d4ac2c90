"""Render loop reports with rich (every number here comes from a LoopReport)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from tentalis.agents.manager import TaskOutcome
from tentalis.demo.loop import LoopReport


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def summary_table(report: LoopReport, title: str) -> Table:
    lo, hi = report.accuracy_ci
    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column("metric", style="bold")
    t.add_column("value")
    t.add_row("tasks", str(report.n))
    t.add_row(
        "accuracy",
        f"{_pct(report.accuracy)} ({report.correct}/{report.n}; 95% CI {_pct(lo)}–{_pct(hi)})",
    )
    t.add_row("Answer: line", f"{report.answer_lines}/{report.n}")
    t.add_row("steps + answer", f"{report.in_format}/{report.n}")
    t.add_row("timed out", str(report.timed_out))
    t.add_row("wall time", f"{report.wall_s:.1f} s")
    t.add_row("throughput", f"{report.tasks_per_s:.2f} tasks/s, "
              f"{report.tokens_per_s:.1f} generated tokens/s")
    t.add_row("task latency", f"p50 {report.latency(50):.1f} s, p99 {report.latency(99):.1f} s")
    return t


def step_table(outcomes: list[TaskOutcome], limit: int = 4) -> Table:
    """Per-step scores of the first ``limit`` scored tasks."""
    t = Table(title="Per-step scores (first tasks)", title_justify="left")
    t.add_column("task", overflow="fold", max_width=28)
    t.add_column("step", justify="right")
    t.add_column("text", overflow="fold", max_width=60)
    t.add_column("score", justify="right")
    t.add_column("answer / expected", overflow="fold")
    t.add_column("outcome", justify="right")
    shown = 0
    for o in outcomes:
        if o.score is None or shown >= limit:
            continue
        shown += 1
        r = o.score.result
        answer = f"{r.final_answer} / {o.task.answer}"
        steps = r.steps or ["(no <step> blocks)"]
        for i, text in enumerate(steps):
            score = o.score.step_scores[i] if i < len(o.score.step_scores) else None
            t.add_row(
                o.task.prompt[:80] if i == 0 else "",
                str(i + 1),
                text.strip().replace("\n", " ")[:160],
                f"{score:.2f}" if score is not None else "–",
                answer if i == 0 else "",
                f"{o.score.outcome_score:.2f}" if i == 0 else "",
            )
        if o.feedback is not None:
            t.add_row("", "", f"[italic]feedback: {o.feedback.feedback}[/italic]", "", "", "")
    return t


def print_loop_report(console: Console, report: LoopReport, title: str) -> None:
    console.print(summary_table(report, title))
    console.print(step_table(report.outcomes))
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.store_counts.items()))
    console.print(f"[dim]experience store: {counts}[/dim]")
