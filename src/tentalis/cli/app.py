"""The ``tentalis`` command line: thin commands → Settings → library calls."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from tentalis.cli import commands
from tentalis.cli.errors import exits_cleanly
from tentalis.cli.options import setting_option, train_option
from tentalis.cli.rewards import rewards_app
from tentalis.config import load_settings
from tentalis.envs import load_environments

app = typer.Typer(
    name="tentalis",
    help="Agents that learn from feedback: manager → workers over NATS, scored steps, "
    "LoRA training hot-swapped into running workers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

app.add_typer(rewards_app, name="rewards")


@app.callback()
@exits_cleanly
def _load_environments() -> None:
    """Register the environments (built-in and the ``tentalis.environments`` entry points)
    before any command runs."""
    load_environments()


Embedded = Annotated[
    bool | None,
    typer.Option("--embedded/--no-embedded",
                 help="Always start an embedded nats-server (NATS_EMBEDDED=always)."),
]
Model = Annotated[str | None, setting_option("inference", "model", "--model")]
NatsUrl = Annotated[str | None, setting_option("bus", "url", "--nats-url")]


def _settings(embedded: bool | None = None, **overrides: object):  # type: ignore[no-untyped-def]
    if embedded:
        overrides["nats_embedded"] = "always"
    return load_settings(**overrides)


@app.command()
@exits_cleanly
def init(
    model: Model = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing config file.")] = False,
) -> None:
    """Write the config file and fetch + cache the model."""
    commands.init(_settings(llm_model=model), force=force)


@app.command()
@exits_cleanly
def serve(
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    embedded: Embedded = None,
    nats_url: NatsUrl = None,
    model: Model = None,
) -> None:
    """Run bus, recorder, scorer, manager and N workers, supervised. Ctrl-C stops all."""
    asyncio.run(commands.serve(_settings(embedded, nats_url=nats_url, llm_model=model), workers))


@app.command()
@exits_cleanly
def status(nats_url: NatsUrl = None) -> None:
    """NATS, streams, consumers, services, model and experience-store counts."""
    asyncio.run(commands.status(_settings(nats_url=nats_url)))


@app.command()
@exits_cleanly
def ask(
    text: Annotated[str, typer.Argument(help="The request for the manager.")],
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 300.0,
    nats_url: NatsUrl = None,
) -> None:
    """Send a request to the running manager; print steps, scores and feedback."""
    asyncio.run(commands.ask(_settings(nats_url=nats_url), text, timeout))


@app.command()
@exits_cleanly
def demo(
    minutes: Annotated[float, typer.Option(
        min=0, help="Training budget in minutes; 0 runs the loop without training.")] = 10.0,
    tasks: Annotated[int, typer.Option(min=1, help=(
        "Held-out tasks per evaluation (64: one generation batch of the training demo)."))] = 64,
    workers: Annotated[int, typer.Option(min=1, help="Worker agents (share one model).")] = 2,
    level: Annotated[str, typer.Option(
        help="Task level: addition, one_step or two_step.")] = "addition",
    max_new_tokens: Annotated[int, typer.Option(min=8, help="Tokens per answer.")] = 48,
    mid_evals: Annotated[int, typer.Option(
        min=0, help="Held-out checks during training (clock paused), for the curve.")] = 1,
    judge: Annotated[int, typer.Option(min=0, help=(
        "With --minutes 0: the step judge (JUDGE_*) scores this many results, shown next "
        "to the verifier's per-step scores."))] = 0,
    embedded: Embedded = None,
    nats_url: NatsUrl = None,
    model: Model = None,
) -> None:
    """Evaluate, train live with hot-swapped adapters for --minutes, evaluate again."""
    settings = _settings(embedded, nats_url=nats_url, llm_model=model)
    asyncio.run(commands.demo(settings, n_tasks=tasks, workers=workers, minutes=minutes,
                              level=level, max_new_tokens=max_new_tokens,
                              mid_evals=mid_evals, judge=judge))


Opt = typer.Option


@app.command()
@exits_cleanly
def train(
    backend: Annotated[str | None, train_option("backend")] = None,
    loss_type: Annotated[str | None, train_option("loss_type")] = None,
    advantage: Annotated[str | None, train_option("advantage")] = None,
    learning_rate: Annotated[float | None, train_option("learning_rate")] = None,
    epsilon: Annotated[float | None, train_option("epsilon")] = None,
    epsilon_high: Annotated[float | None, train_option("epsilon_high")] = None,
    beta: Annotated[float | None, train_option("beta")] = None,
    group_size: Annotated[int | None, train_option("group_size")] = None,
    prompts_per_step: Annotated[int | None, train_option("prompts_per_step")] = None,
    micro_batch_size: Annotated[int | None, train_option("micro_batch_size")] = None,
    lora_r: Annotated[int | None, train_option("lora_r")] = None,
    save_every: Annotated[int | None, train_option("save_every")] = None,
    adapter_name: Annotated[str | None, train_option("adapter_name")] = None,
    dynamic_sampling: Annotated[bool | None, train_option(
        "dynamic_sampling", "--dynamic-sampling/--no-dynamic-sampling")] = None,
    target_worker: Annotated[str | None, Opt(help="Send updates to this worker only.")] = None,
    feed: Annotated[str | None, Opt(
        help="Also sample training rounds from the math suite at this level (e.g. addition).")
    ] = None,
    max_steps: Annotated[int | None, Opt(help="Stop after this many steps.")] = None,
    trainer_id: Annotated[str, Opt(help="This trainer's id (health, ledger, guard).")
                          ] = "trainer-01",
    resume_promotion: Annotated[bool, Opt(
        help="Lift the reward-hacking guard's promotion pause of --trainer-id, then exit.")
    ] = False,
    nats_url: NatsUrl = None,
) -> None:
    """Train a LoRA adapter online from scored rollouts on the bus; workers hot-swap it."""
    settings = _settings(nats_url=nats_url)
    if resume_promotion:
        asyncio.run(commands.resume_promotion(settings, trainer_id))
        return
    fields = {
        "loss_type": loss_type, "advantage": advantage, "learning_rate": learning_rate,
        "epsilon": epsilon, "epsilon_high": epsilon_high, "beta": beta,
        "group_size": group_size, "prompts_per_step": prompts_per_step,
        "micro_batch_size": micro_batch_size, "lora_r": lora_r, "save_every": save_every,
        "adapter_name": adapter_name, "dynamic_sampling": dynamic_sampling,
    }
    asyncio.run(commands.train(settings, backend or settings.training.backend,
                               {k: v for k, v in fields.items() if v is not None},
                               target_worker=target_worker, feed=feed, max_steps=max_steps,
                               trainer_id=trainer_id))


def _service(kind: str) -> None:
    asyncio.run(commands.service(load_settings(), kind))


@app.command()
@exits_cleanly
def worker(
    worker_id: Annotated[str | None, setting_option("worker", "worker_id")] = None,
) -> None:
    """Run one worker (joins its environments' queue groups)."""
    asyncio.run(commands.service(load_settings(worker_id=worker_id), "worker"))


@app.command()
@exits_cleanly
def manager() -> None:
    """Run the manager (reviews scored results, answers `tentalis ask`)."""
    _service("manager")


@app.command()
@exits_cleanly
def scorer() -> None:
    """Run the scorer service."""
    _service("scorer")


@app.command()
@exits_cleanly
def recorder() -> None:
    """Run the recorder (bus → experience store)."""
    _service("recorder")


from tentalis.cli.adapters import adapters_app  # noqa: E402  (sub-apps after the commands)

app.add_typer(adapters_app, name="adapters")


from tentalis.cli.gateway_http import register_gateway_commands  # noqa: E402
from tentalis.cli.model_server import register_model_server_commands  # noqa: E402

register_gateway_commands(app)  # tentalis proxy, tentalis bridge
register_model_server_commands(app)  # tentalis serve-model, tentalis keys


def main() -> None:
    from tentalis.services.allocator import limit_arenas

    limit_arenas()  # before any thread allocates (see services/allocator.py)
    app()
