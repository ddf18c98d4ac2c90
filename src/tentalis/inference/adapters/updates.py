"""Following ModelUpdateEvents: which updates are for a receiver, and verify → load → report.

Shared by everything that hot-swaps adapters — a :class:`~tentalis.agents.worker.Worker`
(into its inference client) and the model server (into its served adapters) — so both
check checksums, treat targeted updates and report outcomes the same way:

1. each receiver reads every update through its own durable consumer ``updates-<id>``;
2. of one batch, only the newest version per adapter name it follows is applied (the
   older ones are moot), and only updates for every receiver or targeted at it;
3. the adapter's sha256 is checked against the update's before anything is loaded;
4. the outcome — loaded, or refused with the reason — is published as an
   :class:`AdapterLoadedEvent` (the adapter registry is built from these).

A refused update is data, not a crash: the receiver keeps serving what it had.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from tentalis.bus.base import Bus, ConsumerSpec, Delivery
from tentalis.errors import AdapterError
from tentalis.events import AdapterLoadedEvent, ModelUpdateEvent, Subjects, derived_id
from tentalis.inference.adapters.store import adapter_sha256

log = logging.getLogger(__name__)

LoadAdapter = Callable[[Path], Awaitable[None]]
"""Loads the verified adapter directory and starts answering with it."""


def updates_spec(receiver_id: str, max_deliver: int = 5) -> ConsumerSpec:
    """``receiver_id``'s own durable consumer of every model update."""
    return ConsumerSpec(name=f"updates-{receiver_id}", subjects=[Subjects.MODEL_UPDATE],
                        batch=64, max_deliver=max_deliver)


def newest_updates(deliveries: Iterable[Delivery], receiver_id: str,
                   follows: Callable[[str], bool]) -> list[ModelUpdateEvent]:
    """The newest update per adapter name that ``follows`` accepts, of those meant for every
    receiver (``target_worker`` None) or for ``receiver_id``."""
    newest: dict[str, ModelUpdateEvent] = {}
    for d in deliveries:
        ev = d.event
        if (isinstance(ev, ModelUpdateEvent) and follows(ev.adapter_name)
                and ev.target_worker in (None, receiver_id)):
            cur = newest.get(ev.adapter_name)
            if cur is None or ev.version >= cur.version:
                newest[ev.adapter_name] = ev
    return list(newest.values())


def update_path(update: ModelUpdateEvent) -> Path:
    """Where the trainer wrote the adapter (what a worker loads)."""
    return Path(update.path)


async def apply_update(bus: Bus, update: ModelUpdateEvent, receiver_id: str,
                       load: LoadAdapter, *, previous: int | None,
                       locate: Callable[[ModelUpdateEvent], Path] = update_path,
                       ) -> AdapterLoadedEvent:
    """Verify the adapter where ``locate`` says (default: the update's path) against the
    update's sha256, ``load`` it, and publish what happened; returns that event (``error``
    set: refused). ``previous`` is the version the receiver answered with before.
    """
    error: str | None = None
    try:
        where = locate(update)
        sha = await asyncio.to_thread(adapter_sha256, where)
        if sha != update.sha256:
            raise AdapterError(
                f"{update.adapter_name} v{update.version}: sha256 {sha[:12]}… does not "
                f"match the update's {update.sha256[:12]}…"
            )
        await load(where)
    except (AdapterError, OSError) as exc:
        log.error("%s refused adapter update: %s", receiver_id, exc)
        error = str(exc)
    except Exception as exc:  # the engine failed to load it: refused, reported, kept serving
        log.exception("%s could not load %s v%d", receiver_id, update.adapter_name,
                      update.version)
        error = f"{type(exc).__name__}: {exc}"
    else:
        log.info("%s now answers with %s v%d", receiver_id, update.adapter_name,
                 update.version)
    loaded = AdapterLoadedEvent(
        event_id=derived_id(update.event_id, "loaded", receiver_id),
        worker_id=receiver_id, adapter_name=update.adapter_name, version=update.version,
        sha256=update.sha256, update_event_id=update.event_id, previous_version=previous,
        error=error, source=receiver_id,
    )
    await bus.publish(loaded)
    return loaded
