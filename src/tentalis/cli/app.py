"""The ``tentalis`` command line: thin commands → Settings → library calls."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from tentalis.cli import commands
from tentalis.cli.errors import exits_cleanly
from tentalis.config import load_settings

app = typer.Typer(
    name="tentalis",
    help="Agents that learn from feedback: manager → workers over NATS, scored steps, "
    "LoRA training hot-swapped into running workers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

Embedded = Annotated[
    bool | None,
    typer.Option("--embedded/--no-embedded",
                 help="Always start an embedded nats-server (NATS_EMBEDDED=always)."),
]
Model = Annotated[
    str | None, typer.Option("--model", help="LLM_MODEL: alias, local dir or hub id.")
]
NatsUrl = Annotated[str | None, typer.Option("--nats-url", help="NATS_URL.")]


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
    tasks: Annotated[int, typer.Option(min=1, help="Held-out tasks to run.")] = 24,
    workers: Annotated[int, typer.Option(min=1, help="Worker agents (share one model).")] = 2,
    embedded: Embedded = None,
    nats_url: NatsUrl = None,
    model: Model = None,
) -> None:
    """Run held-out tasks through the whole loop and report accuracy, step scores, speed."""
    settings = _settings(embedded, nats_url=nats_url, llm_model=model)
    asyncio.run(commands.demo(settings, n_tasks=tasks, workers=workers))


def _service(kind: str) -> None:
    asyncio.run(commands.service(load_settings(), kind))


@app.command()
@exits_cleanly
def worker(worker_id: Annotated[str | None, typer.Option(help="WORKER_ID.")] = None) -> None:
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


def main() -> None:
    app()
