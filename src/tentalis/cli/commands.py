"""What each CLI command does, given Settings. Printing lives here; logic in the library."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import tomli_w
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tentalis.cli.health_view import COLUMNS, service_row
from tentalis.config import Settings, config_file_path
from tentalis.config.training import TrainConfig
from tentalis.envs import load_environments
from tentalis.errors import BusError, ConfigError
from tentalis.events import Subjects

console = Console()


def _load_model_dir(settings: Settings) -> Path:
    from tentalis.models import ModelStore

    store = ModelStore(settings.tentalis_home)
    model = settings.inference.model
    with console.status(f"resolving model {model} (first use fetches and converts)"):
        return store.resolve(model)


def init(settings: Settings, *, force: bool = False) -> None:
    path = config_file_path()
    if path.exists() and not force:
        console.print(f"config exists: {path} (use --force to overwrite)")
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(tomli_w.dumps(settings.to_toml_dict()))
        console.print(f"wrote {path}")
    if settings.inference.backend == "local":
        t0 = time.perf_counter()
        model_dir = _load_model_dir(settings)
        console.print(f"model {settings.inference.model}: {model_dir} "
                      f"({time.perf_counter() - t0:.1f} s)")
        manifest = model_dir / "manifest.json"
        if manifest.exists():
            files = json.loads(manifest.read_text()).get("files", {})
            for name, sha in files.items():
                console.print(f"  {name} sha256 {str(sha)[:16]}…")


async def serve(settings: Settings, workers: int) -> None:
    from tentalis.services.runtime import setup_logging, stop_on_signals
    from tentalis.services.supervisor import Supervisor

    setup_logging(settings)
    if settings.inference.backend == "local":
        await asyncio.to_thread(_load_model_dir, settings)  # fetch once, before the children
    stop = asyncio.Event()
    stop_on_signals(stop)
    sup = Supervisor(settings, workers=workers, on_event=lambda m: console.print(f"[cyan]{m}"))
    console.print("[bold]tentalis serve[/bold] — Ctrl-C stops everything")
    await sup.run(stop)


async def service(settings: Settings, kind: str) -> None:
    from tentalis.services.processes import run_service
    from tentalis.services.runtime import setup_logging

    setup_logging(settings)
    await run_service(kind, settings)


async def _connect_existing(settings: Settings):  # type: ignore[no-untyped-def]
    """Connect to a running bus without starting one (None when there is none)."""
    from tentalis.bus import NatsBus, resolve_nats

    probe = settings.updated(nats_embedded="never")
    try:
        url, _ = await resolve_nats(probe)
    except BusError:
        return None
    bus = NatsBus(url, connect_timeout=settings.bus.connect_timeout)
    await bus.connect()
    return bus


async def status(settings: Settings) -> None:
    bus = await _connect_existing(settings)
    if bus is None:
        console.print(f"[red]NATS[/red]: nothing answers at {settings.bus.url} and no embedded "
                      "server is running (start one with `tentalis serve`)")
    shown: set[str] = set()
    if bus is not None:
        try:
            shown = await _print_bus(bus)
        finally:
            await bus.close()
    _print_model(settings)
    console.print("environments: " + ", ".join(load_environments()))
    _print_store(settings, shown)


async def _print_bus(bus) -> set[str]:  # type: ignore[no-untyped-def]
    """Print the bus and the services' health; return the trainers shown paused."""
    info = await bus.info()
    console.print(f"[green]NATS[/green]: {info.url} — stream {info.stream}: "
                  f"{info.messages} messages, {info.bytes / 1e6:.2f} MB")
    t = Table(title="consumers", title_justify="left")
    for col in ("name", "pending", "ack pending", "redelivered", "subjects"):
        t.add_column(col)
    for c in info.consumers:
        t.add_row(c.name, str(c.pending), str(c.ack_pending), str(c.redelivered),
                  ", ".join(c.filter_subjects))
    console.print(t)
    health = await bus.get_health()
    h = Table(title="services", title_justify="left")
    for col in COLUMNS:
        h.add_column(col)
    now = time.time()
    for key, v in sorted(health.items()):
        h.add_row(*service_row(key, v, now))
    console.print(h if health else "services: none has reported yet")
    paused = {k for k, v in health.items() if v.get("promotion") == "paused"}
    for key in sorted(paused):
        reason = health[key].get("promotion_reason", "?")
        console.print(f"[red]{key}: promotion paused: {reason}[/red]")
    return paused


def _print_model(settings: Settings) -> None:
    from tentalis.models import ModelStore

    if settings.inference.backend != "local":
        console.print(f"model: {settings.inference.model} via {settings.inference.backend} "
                      f"at {settings.inference.resolved_base_url()}")
        return
    cached = ModelStore(settings.tentalis_home).cached_path(settings.inference.model)
    if cached is None:
        console.print(f"model: {settings.inference.model} — not cached yet (`tentalis init`)")
    else:
        console.print(f"model: {settings.inference.model} — {cached}")


def _print_store(settings: Settings, shown: set[str] | None = None) -> None:
    from tentalis.store import ExperienceStore

    if not settings.store_path.exists():
        console.print(f"store: {settings.store_path} — empty (no events recorded yet)")
        return
    store = ExperienceStore(settings.store_path)
    try:
        counts = store.counts()
        dup = store.duplicate_results()
        from tentalis.store.guard import GuardLedger

        paused = GuardLedger(store).paused()
    finally:
        store.close()
    t = Table(title=f"experience store {settings.store_path}", title_justify="left")
    t.add_column("kind")
    t.add_column("count", justify="right")
    for k, v in sorted(counts.items()):
        t.add_row(k, str(v))
    t.add_row("tasks with >1 result", str(dup))
    console.print(t)
    for trainer_id, event in paused.items():
        if shown and trainer_id in shown:
            continue  # already shown from the trainer's live health entry
        console.print(f"[red]{trainer_id}: promotion paused: {event.reason}[/red] (since step "
                      f"{event.step}; `tentalis train --resume-promotion --trainer-id "
                      f"{trainer_id}` lifts it)")


async def ask(settings: Settings, text: str, timeout: float) -> None:
    from tentalis.agents.manager import AskRequest, RequestOutcome

    bus = await _connect_existing(settings)
    if bus is None:
        raise BusError(f"no NATS server at {settings.bus.url}: start `tentalis serve` first")
    try:
        with console.status("waiting for the manager…"):
            reply = await bus.request(
                Subjects.MANAGER_ASK, AskRequest(text=text).model_dump_json().encode(), timeout
            )
    finally:
        await bus.close()
    data = json.loads(reply)
    if "error" in data:
        raise BusError(f"manager: {data['error']}")
    outcome = RequestOutcome.model_validate(data)
    for o in outcome.outcomes:
        console.print(f"[bold]task[/bold] {o.task.prompt}")
        if o.score is None:
            console.print("  (no result)")
        else:
            r = o.score.result
            for i, step in enumerate(r.steps):
                s = o.score.step_scores[i] if i < len(o.score.step_scores) else None
                console.print(f"  step {i + 1} [{'–' if s is None else f'{s:.2f}'}] "
                              f"{step.strip()}")
            if not r.steps:
                console.print(f"  (no <step> blocks) {r.raw_text.strip()[:400]}")
            console.print(f"  answer: {r.final_answer}   outcome score {o.score.outcome_score:.2f}"
                          f" ({o.score.scorer})")
        if o.feedback is not None:
            console.print(f"  feedback: {o.feedback.feedback}")


async def demo(settings: Settings, *, n_tasks: int, workers: int, minutes: float,
               level: str, max_new_tokens: int, mid_evals: int = 1, judge: int = 0) -> None:
    """Without training (``minutes == 0``): held-out tasks through the loop and a report.
    With training: evaluate, train live for ``minutes`` with hot-swaps, evaluate again.
    ``judge > 0``: the step judge also scores that many results, shown by the verifier's."""
    from tentalis.demo.loop import heldout_tasks, run_tasks
    from tentalis.demo.report import print_loop_report
    from tentalis.inference.factory import create_inference
    from tentalis.services.runtime import connected_bus

    if judge and minutes > 0:
        raise ConfigError("--judge shows the judge on an evaluation run: use it with --minutes 0")
    if minutes > 0 and settings.inference.backend != "local":
        raise ConfigError("the training demo trains in-process: it needs INFERENCE_BACKEND=local")
    if minutes > 0:
        # one sampling round (up to 16 prompts × 4 samples, see training.feeder.round_size)
        # is one generation batch
        settings = settings.updated(
            inference_max_batch=max(settings.inference.max_batch, 64),
            manager_max_in_flight=max(settings.manager.max_in_flight, 64),
            # the workers take a round's tasks in separate fetches: wait for all of them
            # to join one generation batch instead of decoding two batches in turn
            inference_batch_window_ms=max(settings.inference.batch_window_ms, 50.0),
            # float32 like the trainer: the workers then serve the trained adapter merged
            # into the weights (inference.merging), and the recipe was shown in float32
            inference_dtype="float32",
            worker_adapter="demo",  # the demo's workers follow the demo's adapter only
        )
    if settings.inference.backend == "local":
        await asyncio.to_thread(_load_model_dir, settings)
    with console.status("loading model"):
        inference = await asyncio.to_thread(create_inference, settings)
    try:
        async with connected_bus(settings) as bus:
            console.print(f"NATS: {bus.url}")
            if minutes > 0:
                await _training_demo(bus, settings, inference, n_tasks=n_tasks, workers=workers,
                                     minutes=minutes, level=level,
                                     max_new_tokens=max_new_tokens, mid_evals=mid_evals)
                return
            tasks = heldout_tasks(settings, n_tasks, level=level, max_new_tokens=max_new_tokens)
            progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                MofNCompleteColumn(), TimeElapsedColumn(), console=console)
            with progress:
                bar = progress.add_task("tasks through the loop", total=len(tasks))
                report = await run_tasks(bus, inference, settings, tasks, workers=workers,
                                         on_done=lambda _o: progress.advance(bar))
            print_loop_report(console, report, f"held-out tasks — {settings.inference.model}")
            if judge:
                await _judge_view(settings, inference, report.outcomes, judge)
    finally:
        await inference.close()


async def _judge_view(settings: Settings, inference, outcomes, limit: int) -> None:  # type: ignore[no-untyped-def]
    from tentalis.demo.judge_view import comparison_table, cost_line, judge_results, scored_results
    from tentalis.rewards.judge import JudgeScorer
    from tentalis.rewards.judge_factory import judge_config, judge_inference, judge_settings

    js = judge_settings(settings)
    same = (js.inference.backend, js.inference.model) == (
        settings.inference.backend, settings.inference.model)
    client = inference if same and not settings.judge.base_url else judge_inference(settings)
    results = scored_results(outcomes, limit)
    with console.status(f"judging {sum(len(r.steps) for r in results)} steps"):
        rows = await judge_results(JudgeScorer(client, judge_config(settings)), results)
    console.print(comparison_table(rows))
    console.print(f"[dim]{cost_line(rows)}[/dim]")


def demo_train_config(settings: Settings, max_new_tokens: int) -> TrainConfig:
    """The training demo's algorithm: DAPO loss and clip-higher, group-normalised
    advantages, dynamic sampling, truncated completions masked, LoRA r=16 on every linear
    layer, an adapter per step.

    Masking, not the soft overlong penalty: the penalty rewards finishing early, and a
    short answer without an ``Answer:`` line still earns the lenient reward's ``appears``
    part, so it pulled the model away from the format (docs/measurements.md, "Overlong
    penalty in the demo")."""
    return TrainConfig(
        loss_type="dapo", advantage="group", epsilon=0.2,
        epsilon_high=settings.training.epsilon_high, learning_rate=5e-4,
        lora_r=16, lora_alpha=32, group_size=4, prompts_per_step=4, micro_batch_size=16,
        dynamic_sampling=True, save_every=1, keep_checkpoints=2, adapter_name="demo",
        max_new_tokens=max_new_tokens, seed=settings.tentalis_seed,
    )


async def _training_demo(bus, settings: Settings, inference, *, n_tasks: int,  # type: ignore[no-untyped-def]
                         workers: int, minutes: float, level: str,
                         max_new_tokens: int, mid_evals: int) -> None:
    from tentalis.demo.training import run_training_demo
    from tentalis.demo.training_report import (
        print_training_report,
        save_training_report,
        step_line,
    )

    run_dir = settings.tentalis_home / "runs" / time.strftime("demo-%Y%m%d-%H%M%S")
    config = demo_train_config(settings, max_new_tokens)
    model_dir = _load_model_dir(settings)
    report = await run_training_demo(  # step metrics go to run_dir/tensorboard
        bus, settings, inference, model_dir, config, minutes=minutes, eval_tasks=n_tasks,
        workers=workers, level=level, train_max_new_tokens=max_new_tokens,
        run_dir=run_dir, say=lambda m: console.print(f"[cyan]{m}"),
        on_step=lambda m: console.print(step_line(m)), mid_evals=mid_evals,
    )
    print_training_report(console, report)
    out = save_training_report(run_dir / "report.json", report, config.model_dump(mode="json"))
    console.print(f"report: {out}")


async def train(settings: Settings, backend: str, fields: dict, *,  # type: ignore[type-arg]
                target_worker: str | None, feed: str | None, max_steps: int | None,
                trainer_id: str = "trainer-01") -> None:
    from pydantic import ValidationError

    from tentalis.demo.training_report import step_line
    from tentalis.services.runtime import setup_logging
    from tentalis.services.training import check_backend, run_trainer

    check_backend(backend)
    setup_logging(settings)
    try:
        config = TrainConfig.model_validate(settings.training.model_dump() | fields)
    except ValidationError as exc:
        problems = "; ".join(f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}"
                             for e in exc.errors())
        raise ConfigError(f"invalid training options: {problems}") from None
    console.print(f"[bold]tentalis train[/bold] {backend}: {config.loss_type}, "
                  f"G={config.group_size}, {config.prompts_per_step} prompts/step, "
                  f"adapter {config.adapter_name!r}")
    await run_trainer(settings, config, backend=backend, target_worker=target_worker,
                      trainer_id=trainer_id, feed_level=feed, max_steps=max_steps,
                      on_step=lambda m: console.print(step_line(m)))


async def resume_promotion(settings: Settings, trainer_id: str) -> None:
    """Lift the guard's promotion pause of ``trainer_id`` (store, and bus when one runs)."""
    from tentalis.store import ExperienceStore
    from tentalis.training.promotion import resume_promotion as lift

    store = ExperienceStore(settings.store_path)
    bus = await _connect_existing(settings)
    try:
        done = await lift(store, bus, trainer_id, by=_user())
    finally:
        store.close()
        if bus is not None:
            await bus.close()
    if done is None:
        console.print(f"trainer {trainer_id}: promotion is not paused")
        return
    paused, _ = done
    console.print(f"trainer {trainer_id}: promotion resumed (paused at step {paused.step}: "
                  f"{paused.reason})")
    if bus is None:
        console.print("no bus answered: a running trainer takes this up at its next save, "
                      "a stopped one when it starts")


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"
