"""``tentalis adapters``: the adapter registry — versions, per-worker history, rollback."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tentalis.cli.errors import exits_cleanly
from tentalis.config import Settings, load_settings
from tentalis.errors import BusError

adapters_app = typer.Typer(help="Adapter versions, which worker runs which, and rollback.",
                           no_args_is_help=True)
console = Console()


def _registry(settings: Settings):  # type: ignore[no-untyped-def]
    from tentalis.inference.adapters import AdapterStore
    from tentalis.store import ExperienceStore
    from tentalis.training.registry import AdapterRegistry

    store = ExperienceStore(settings.store_path)
    return AdapterRegistry(store, AdapterStore(settings.tentalis_home / "adapters"))


@adapters_app.command("list")
@exits_cleanly
def list_versions(
    name: Annotated[str | None, typer.Argument(help="Only this adapter.")] = None,
) -> None:
    """Published adapter versions, and the workers answering with each now."""
    registry = _registry(load_settings())
    try:
        versions, current = registry.versions(name), registry.current()
    finally:
        registry.store.close()
    table = Table("adapter", "version", "step", "sha256", "target", "workers now")
    for v in versions:
        on = [w.worker_id for w in current.values()
              if w.adapter_name == v.adapter_name and w.version == v.version]
        table.add_row(v.adapter_name, str(v.version), str(v.step or ""), v.sha256[:12],
                      v.target_worker or "all", ", ".join(sorted(on)))
    console.print(table if versions else "no adapter version has been published")


@adapters_app.command()
@exits_cleanly
def history(
    worker: Annotated[str | None, typer.Option(help="Only this worker.")] = None,
) -> None:
    """Every adapter load (or refusal) by each worker, oldest first."""
    registry = _registry(load_settings())
    try:
        events = registry.history(worker)
    finally:
        registry.store.close()
    table = Table("time", "worker", "adapter", "version", "from", "outcome")
    for e in events:
        table.add_row(e.created_at.strftime("%Y-%m-%d %H:%M:%S"), e.worker_id, e.adapter_name,
                      str(e.version), "" if e.previous_version is None else str(e.previous_version),
                      "loaded" if e.error is None else f"refused: {e.error}")
    console.print(table if events else "no worker has loaded an adapter yet")


@adapters_app.command()
@exits_cleanly
def rollback(
    name: Annotated[str, typer.Argument(help="Adapter name (e.g. policy).")],
    version: Annotated[int, typer.Argument(min=1, help="The stored version to go back to.")],
    worker: Annotated[str | None, typer.Option(
        help="Only this worker (default: every worker following the adapter).")] = None,
) -> None:
    """Publish an earlier stored version again; the workers switch to it between requests."""
    asyncio.run(_rollback(load_settings(), name, version, worker))


async def _rollback(settings: Settings, name: str, version: int, worker: str | None) -> None:
    from tentalis.cli.commands import _connect_existing

    registry = _registry(settings)
    try:
        update = registry.rollback(name, version, target_worker=worker)
    finally:
        registry.store.close()
    bus = await _connect_existing(settings)
    if bus is None:
        raise BusError(f"no NATS server answers at {settings.bus.url}: start `tentalis serve` "
                       "first (workers take rollbacks from the bus)")
    try:
        await bus.publish(update)
    finally:
        await bus.close()
    console.print(f"published {name} v{version} ({update.sha256[:12]}…) to "
                  f"{worker or 'every worker following ' + repr(name)}")
