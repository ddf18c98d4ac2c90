"""``tentalis rewards …``: judge calibration and the scoring profiles."""

from __future__ import annotations

import asyncio
import shlex
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tentalis.cli.errors import exits_cleanly
from tentalis.cli.options import setting_option
from tentalis.config import Settings, load_settings
from tentalis.errors import ConfigError

rewards_app = typer.Typer(help="Scorers: calibrate the judge, list scoring profiles.",
                          no_args_is_help=True)
console = Console()
Opt = typer.Option


def _command(name: str, params: dict[str, object]) -> str:
    """The command line that reproduces this run: every option, defaults included."""
    args = ["tentalis", "rewards", name]
    for key, value in params.items():
        if value is not None:
            args += [f"--{key.replace('_', '-')}", str(value)]
    return shlex.join(args)


@rewards_app.command()
@exits_cleanly
def calibrate(
    tasks: Annotated[int, Opt(min=1, help="Held-out math tasks to answer.")] = 24,
    level: Annotated[str, Opt(help="Math level: addition, one_step or two_step.")] = "one_step",
    source: Annotated[str, Opt(
        help="model: the local model answers (sampled, T=0.7); reference: a right and a "
             "planted-slip written solution per task.")] = "model",
    samples: Annotated[int, Opt(min=1, help="Sampled answers per task (--source model).")] = 1,
    votes: Annotated[int | None, setting_option("judge", "votes", min=1)] = None,
    aggregate: Annotated[str | None, setting_option("judge", "aggregate")] = None,
    max_new_tokens: Annotated[int, Opt(min=8, help="Tokens per worker answer.")] = 64,
    results: Annotated[Path | None, Opt(
        help="Score these stored results (JSONL of ResultEvents, e.g. a previous run's "
             "results.jsonl) instead of generating.")] = None,
    out: Annotated[Path | None, Opt(
        help="Report directory (default <home>/calibration/<time>).")] = None,
    model: Annotated[str | None, setting_option("inference", "model")] = None,
    judge_model: Annotated[str | None, setting_option("judge", "model")] = None,
    seed: Annotated[int | None, Opt(help="TENTALIS_SEED: tasks and sampling.")] = None,
) -> None:
    """Judge vs verifier on math tasks with ground truth: agreement, Spearman ρ, ECE."""
    if source not in ("model", "reference"):
        raise ConfigError(f"--source must be model or reference, got {source!r}")
    settings = load_settings(llm_model=model, judge_model=judge_model, tentalis_seed=seed,
                             judge_votes=votes, judge_aggregate=aggregate)
    out = out or settings.tentalis_home / "calibration" / time.strftime("%Y%m%d-%H%M%S")
    command = _command("calibrate", {
        "tasks": tasks, "level": level, "source": source, "samples": samples,
        "votes": settings.judge.votes,
        "aggregate": settings.judge.aggregate, "max_new_tokens": max_new_tokens,
        "results": results, "out": out, "model": settings.inference.model,
        "judge_model": settings.judge.model, "seed": settings.tentalis_seed})
    asyncio.run(_calibrate(settings, tasks=tasks, level=level, source=source, samples=samples,
                           max_new_tokens=max_new_tokens, results_file=results, out=out,
                           command=command))


async def _calibrate(settings: Settings, *, tasks: int, level: str, source: str, samples: int,
                     max_new_tokens: int, results_file: Path | None, out: Path,
                     command: str) -> None:
    from tentalis.envs.answering import generate_results
    from tentalis.envs.math.calibration import calibration_tasks, reference_results
    from tentalis.inference.factory import create_inference
    from tentalis.rewards.calibrate import judge_against_verifier, read_results, write_results
    from tentalis.rewards.calibration_report import summary_lines, write_report
    from tentalis.rewards.judge import JudgeScorer
    from tentalis.rewards.judge_factory import judge_config, judge_inference, judge_settings

    js = judge_settings(settings)
    same_model = (js.inference.backend, js.inference.model, js.inference.base_url) == (
        settings.inference.backend, settings.inference.model,
        settings.inference.resolved_base_url())
    stored = read_results(results_file) if results_file is not None else None  # fail early
    worker = None
    if (results_file is None and source == "model") or same_model:
        with console.status(f"loading {settings.inference.model}"):
            worker = await asyncio.to_thread(create_inference, settings)
    try:
        if results_file is not None:
            results, origin = stored or [], f"stored: {results_file}"
            author = "workers " + ", ".join(sorted({r.worker_id for r in results}))
        elif source == "reference":
            task_list = calibration_tasks(tasks, level=level, seed=settings.tentalis_seed)
            results = reference_results(task_list, seed=settings.tentalis_seed)
            origin = f"reference: math/{level}, a right and a planted-slip solution per task"
            author = "none (written reference solutions)"
        else:
            assert worker is not None
            task_list = calibration_tasks(tasks, level=level, seed=settings.tentalis_seed)
            with console.status(f"{len(task_list) * samples} worker answers"):
                results = await generate_results(
                    worker, task_list, samples=samples, max_new_tokens=max_new_tokens,
                    seed=settings.tentalis_seed)
            origin = f"generated: math/{level}, {samples} sample(s) per task at T=0.7"
            author = settings.inference.model
        judge_client = worker if same_model and worker else judge_inference(settings)
        judge = JudgeScorer(judge_client, judge_config(settings))
        with console.status(f"judging {sum(len(r.steps) for r in results)} steps"):
            data = await judge_against_verifier(judge, results)
    finally:
        if worker is not None:
            await worker.close()
    meta = {"command": command, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seed": settings.tentalis_seed, "worker_model": author,
            "judge_model": judge_client.model_name, "votes": judge.config.votes,
            "aggregate": judge.config.aggregate, "tasks": len({r.task_id for r in results}),
            "source": origin}
    files = write_report(out, data, meta)
    write_results(out / "results.jsonl", results)
    for line in summary_lines(data):
        console.print(line)
    console.print(f"wrote {', '.join(str(p) for p in files)} and {out / 'results.jsonl'}")


@rewards_app.command()
@exits_cleanly
def profiles() -> None:
    """The scoring profiles (shipped and $TENTALIS_HOME/profiles): weights and why."""
    from tentalis.rewards.profiles import available_profiles, load_profile

    settings = load_settings()
    for name in available_profiles(settings.tentalis_home):
        p = load_profile(name, settings.tentalis_home)
        total = sum(p.weights.values())
        t = Table(title=f"{p.name} — {p.description}", title_justify="left")
        for col in ("component", "weight", "why"):
            t.add_column(col, overflow="fold")
        for comp, w in p.weights.items():
            t.add_row(comp, f"{w / total:.2f}", p.why.get(comp, ""))
        console.print(t)
        console.print(f"[dim]{p.source}[/dim]")
