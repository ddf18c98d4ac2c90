"""The adapter registry: per-worker load history from the store, and rollback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tentalis.agents.worker import Worker, WorkerConfig
from tentalis.errors import AdapterError
from tentalis.events import AdapterLoadedEvent, ModelUpdateEvent, Subjects
from tentalis.inference.adapters import AdapterStore
from tentalis.store import ExperienceStore
from tentalis.training.registry import AdapterRegistry


def _adapter_dir(root: Path, weights: bytes) -> Path:
    root.mkdir(parents=True)
    (root / "adapter_config.json").write_text("{}")
    (root / "adapter_model.safetensors").write_bytes(weights)
    return root


def _publish_event(store: AdapterStore, name: str, weights: bytes, tmp: Path) -> ModelUpdateEvent:
    v = store.save_version(name, _adapter_dir(tmp / f"src-{len(store.versions(name))}", weights))
    return ModelUpdateEvent(adapter_name=name, version=v.version, sha256=v.sha256,
                            path=str(v.path), step=v.version * 10)


@pytest.fixture
def setup(tmp_path, memory_bus, scripted_inference):  # type: ignore[no-untyped-def]
    adapters = AdapterStore(tmp_path / "adapters")
    store = ExperienceStore(tmp_path / "store.db")
    updates = [_publish_event(adapters, "policy", w, tmp_path) for w in (b"one", b"two", b"3")]
    inference = scripted_inference()
    workers = [Worker(memory_bus, inference, WorkerConfig(worker_id=w, follow_adapter="policy"))
               for w in ("w1", "w2")]
    yield AdapterRegistry(store, adapters), updates, workers, inference
    store.close()


async def test_workers_report_loads_and_the_registry_keeps_each_history(
    setup, memory_bus, collect_events
) -> None:
    registry, updates, (w1, w2), _ = setup
    for u in updates:
        await w1.apply_update(u)
    await w2.apply_update(updates[0])
    bad = updates[2].model_copy(update={"sha256": "0" * 64, "event_id": "bad"})
    await w2.apply_update(bad)  # refused: checksum mismatch

    loaded = await collect_events(memory_bus, [Subjects.ADAPTER_LOADED], 5)
    assert all(isinstance(e, AdapterLoadedEvent) for e in loaded)
    registry.store.append([*updates, *loaded])

    h1 = registry.history("w1")
    assert [(e.version, e.previous_version) for e in h1] == [(1, None), (2, 1), (3, 2)]
    h2 = registry.history("w2")
    assert [e.version for e in h2] == [1, 3] and h2[1].error and "sha256" in h2[1].error
    now = registry.current()
    assert (now["w1"].version, now["w2"].version) == (3, 1)  # a refusal changes nothing
    assert [v.version for v in registry.versions("policy")] == [1, 2, 3]


async def test_rollback_puts_an_earlier_version_back(setup, memory_bus) -> None:
    registry, updates, (w1, _), inference = setup
    registry.store.append(updates)
    for u in updates:
        await w1.apply_update(u)
    assert w1.adapter_version == 3

    event = registry.rollback("policy", 1, target_worker="w1")
    assert (event.version, event.sha256, event.target_worker) == (1, updates[0].sha256, "w1")
    assert event.step == updates[0].step
    await memory_bus.publish(event)
    async for batch in memory_bus.consume(w1.updates_spec()):
        await w1.handle_updates(batch)
        if w1.adapter_version == 1:
            break
    assert w1.adapter_version == 1
    assert inference._adapters["policy"] == str(updates[0].path)


def test_rollback_refuses_missing_or_altered_versions(setup) -> None:
    registry, updates, _, _ = setup
    registry.store.append(updates)
    with pytest.raises(AdapterError, match=r"no version 7 \(have \[1, 2, 3\]\)"):
        registry.rollback("policy", 7)
    (Path(updates[1].path) / "adapter_model.safetensors").write_bytes(b"tampered")
    with pytest.raises(AdapterError, match="not what was published"):
        registry.rollback("policy", 2)
