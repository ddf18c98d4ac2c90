from __future__ import annotations

import asyncio

from tentalis.bus.consumer import run_batch_consumer
from tentalis.events import FeedbackEvent, TaskEvent
from tentalis.store import ExperienceStore
from tentalis.store.recorder import Recorder


async def test_recorder_persists_every_event_once(memory_bus, tmp_path, wait_for) -> None:
    store = ExperienceStore(tmp_path / "x.db")
    recorder = Recorder(store)
    task = TaskEvent(prompt="p", answer="1")
    await memory_bus.publish(task)
    await memory_bus.publish(FeedbackEvent(task_id=task.task_id, score=1.0, feedback="ok"))
    await memory_bus.publish(task)  # duplicate publish: deduplicated
    stop = asyncio.Event()
    run = asyncio.create_task(run_batch_consumer(memory_bus, recorder.spec,
                                                 recorder.handle_batch, stop=stop))
    await wait_for(lambda: recorder.recorded >= 2, what="the recorder")
    stop.set()
    await asyncio.wait_for(run, 3)
    counts = store.counts()
    assert counts["task"] == 1 and counts["feedback"] == 1
    info = await memory_bus.info()
    rec = next(c for c in info.consumers if c.name == "recorder")
    assert rec.pending == 0 and rec.ack_pending == 0  # acked only after the commit
    store.close()
