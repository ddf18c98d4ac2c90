"""The adapter registry: which adapter versions exist, and which worker ran which, when.

Built from the experience store — ModelUpdateEvents (versions published, with their
checksum and the step that made them) and AdapterLoadedEvents (each worker's answer to an
update: loaded or refused) — plus the adapter store on disk (what can still be loaded).

Per-worker specialisation: a worker follows one adapter name (WORKER_ADAPTER) and a
trainer publishes one name, optionally to one ``--target-worker``; the registry shows each
worker's own history. A rollback publishes an earlier stored version again (to every
worker following that adapter, or to one); workers apply it like any update. The next
version a trainer publishes supersedes a rollback: stop or retarget that trainer to hold
workers on the old version.
"""

from __future__ import annotations

from dataclasses import dataclass

from tentalis.errors import AdapterError
from tentalis.events import AdapterLoadedEvent, ModelUpdateEvent, decode_event
from tentalis.inference.adapters import AdapterStore
from tentalis.store.sqlite import ExperienceStore


@dataclass(frozen=True)
class WorkerAdapter:
    """A worker's most recent adapter load."""

    worker_id: str
    adapter_name: str
    version: int
    loaded_at: str


class AdapterRegistry:
    """Adapter versions and per-worker load history (read side) and rollbacks."""

    def __init__(self, store: ExperienceStore, adapters: AdapterStore) -> None:
        self.store = store
        self.adapters = adapters

    def versions(self, name: str | None = None) -> list[ModelUpdateEvent]:
        """Published versions (of ``name`` or all), by name then version."""
        return self.store.adapter_versions(name)

    def history(self, worker_id: str | None = None) -> list[AdapterLoadedEvent]:
        """Every load (or refusal) by ``worker_id`` (or every worker), oldest first."""
        rows = self.store.read(
            "SELECT payload FROM events WHERE kind = 'adapter_loaded' ORDER BY created_at",
        )
        events = [decode_event(r[0]) for r in rows]
        return [e for e in events if isinstance(e, AdapterLoadedEvent)
                and (worker_id is None or e.worker_id == worker_id)]

    def current(self) -> dict[str, WorkerAdapter]:
        """Each worker's adapter now: its latest successful load."""
        now: dict[str, WorkerAdapter] = {}
        for e in self.history():
            if e.error is None:
                now[e.worker_id] = WorkerAdapter(e.worker_id, e.adapter_name, e.version,
                                                 e.created_at.isoformat())
        return now

    def rollback(self, name: str, version: int,
                 target_worker: str | None = None) -> ModelUpdateEvent:
        """The ModelUpdateEvent that puts ``name`` v``version`` back into the workers.

        The version must still be in the adapter store and match the checksum it was
        published with; raises :class:`AdapterError` saying what is available otherwise.
        """
        stored = self.adapters.get(name, version)  # AdapterError naming the stored versions
        path, sha = stored.path, stored.sha256
        published = {v.version: v for v in self.versions(name)}
        original = published.get(version)
        if original is not None and original.sha256 != sha:
            raise AdapterError(
                f"{name} v{version} on disk ({sha[:12]}…) is not what was published "
                f"({original.sha256[:12]}…); refusing to roll back to it"
            )
        return ModelUpdateEvent(
            adapter_name=name, version=version, sha256=sha, path=str(path),
            base_model=original.base_model if original else "",
            target_worker=target_worker, step=original.step if original else None,
            metrics={"rollback": 1.0},
        )
