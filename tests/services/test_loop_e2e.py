"""The whole loop on a real nats-server with the tiny model: tasks in, feedback out."""

from __future__ import annotations

import asyncio

import pytest

from tentalis.bus import EmbeddedNats, NatsBus
from tentalis.config import load_settings
from tentalis.demo.loop import heldout_tasks, run_tasks
from tentalis.events import DeadLetterEvent, Subjects
from tentalis.inference.local import LocalInference
from tentalis.store import ExperienceStore

pytestmark = pytest.mark.nats


@pytest.fixture
async def nats_bus(tmp_path):  # type: ignore[no-untyped-def]
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    bus = NatsBus(server.url)
    await bus.connect()
    yield bus
    await bus.close()
    server.stop()


@pytest.fixture
def settings(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TENTALIS_HOME", str(tmp_path / "home"))
    return load_settings(max_new_tokens=24, task_timeout_seconds=60, inference_max_batch=4,
                         manager_max_in_flight=8)


async def test_tasks_flow_through_workers_scorer_manager_and_store(
    nats_bus, settings, tiny_model_dir
) -> None:
    inference = LocalInference(tiny_model_dir, max_batch=4)
    tasks = heldout_tasks(settings, 8)
    report = await run_tasks(nats_bus, inference, settings, tasks, workers=2)
    await inference.close()

    assert report.n == 8 and report.timed_out == 0
    assert all(o.feedback is not None and o.score is not None for o in report.outcomes)
    assert report.completion_tokens > 0
    with ExperienceStore(settings.store_path) as store:
        counts = store.counts()
        assert counts["task"] == 8 and counts["result"] == 8 and counts["score"] == 8
        assert counts["feedback"] == 8 and counts["session"] == 8
        assert store.duplicate_results() == 0
        view = store.task_view(tasks[0].task_id)
        assert view is not None and view.feedback and view.scores
    # every service read through its own durable consumer
    info = await nats_bus.info()
    names = {c.name for c in info.consumers}
    assert {"workers-math", "scorers", "managers", "recorder"} <= names


async def test_malformed_task_goes_to_dead_letter_and_the_loop_keeps_serving(
    nats_bus, settings, tiny_model_dir
) -> None:
    inference = LocalInference(tiny_model_dir, max_batch=4)
    await nats_bus.publish_raw(Subjects.task("math"), b'{"kind": "task", "prompt": 42')
    report = await run_tasks(nats_bus, inference, settings, heldout_tasks(settings, 2))
    await inference.close()
    assert report.n == 2 and report.timed_out == 0
    with ExperienceStore(settings.store_path) as store:
        dead = store.dead_letters()
    assert any(isinstance(d, DeadLetterEvent) and d.original_subject == Subjects.task("math")
               and d.consumer == "workers-math" for d in dead)
    await asyncio.sleep(0)
