"""A worker process killed with SIGKILL mid-task: no task lost, none recorded twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from tentalis.bus import EmbeddedNats, NatsBus, run_batch_consumer
from tentalis.events import TaskEvent
from tentalis.store import ExperienceStore
from tentalis.store.recorder import Recorder

pytestmark = pytest.mark.nats


def _worker(env: dict[str, str], worker_id: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tentalis", "worker", "--worker-id", worker_id],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


async def _until(pred, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await pred():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_sigkill_mid_task_loses_nothing_and_records_once(tmp_path, tiny_model_dir) -> None:
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    env = {
        **os.environ, "NATS_URL": server.url, "NATS_EMBEDDED": "never",
        "TENTALIS_HOME": str(tmp_path / "home"), "LLM_MODEL": str(tiny_model_dir),
        "MAX_NEW_TOKENS": "1500", "TEMPERATURE": "0", "BUS_ACK_WAIT_SECONDS": "3",
        "INFERENCE_MAX_BATCH": "8",
    }
    bus = NatsBus(server.url)
    await bus.connect()
    store = ExperienceStore(tmp_path / "ledger.db")
    recorder = Recorder(store)
    stop = asyncio.Event()
    rec = asyncio.create_task(run_batch_consumer(bus, recorder.spec, recorder.handle_batch,
                                                 stop=stop))
    tasks = [TaskEvent(prompt=f"What is {i} + {i}?", answer=str(2 * i)) for i in range(6)]
    first = _worker(env, "worker-a")
    second = None
    try:
        for t in tasks:
            await bus.publish(t)

        async def consumer(name: str):  # type: ignore[no-untyped-def]
            return next((c for c in (await bus.info()).consumers if c.name == name), None)

        async def recorded_all() -> bool:  # the recorder holds nothing it has not stored
            c = await consumer(recorder.spec.name)
            return c is not None and (c.pending, c.ack_pending) == (0, 0)

        async def in_flight() -> bool:  # worker-a holds tasks it has not answered
            c = await consumer("workers-math")
            return c is not None and c.ack_pending > 0 and store.counts()["result"] == 0

        async def frozen_in_flight() -> bool:
            # Freeze worker-a, let the recorder store whatever it published, then look: a
            # frozen worker cannot finish between the look and the kill.
            first.send_signal(signal.SIGSTOP)
            await _until(recorded_all, 30, "the recorder to catch up")
            if await in_flight():
                return True
            first.send_signal(signal.SIGCONT)
            return False

        await _until(frozen_in_flight, 120, "worker-a to take the tasks")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert store.counts()["result"] < len(tasks)  # killed before answering them all
        second = _worker(env, "worker-b")

        async def all_answered() -> bool:
            return store.counts()["result"] >= len(tasks)

        await _until(all_answered, 180, "worker-b to answer the redelivered tasks")

        async def quiet() -> bool:  # every task acked, every result stored: nothing can follow
            c = await consumer("workers-math")
            return c is not None and (c.pending, c.ack_pending) == (0, 0) and await recorded_all()

        await _until(quiet, 60, "the workers' and the recorder's consumers to settle")
        assert store.counts()["result"] == len(tasks)
        assert store.duplicate_results() == 0
        for t in tasks:
            view = store.task_view(t.task_id)
            assert view is not None and len(view.results) == 1
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(20)
        stop.set()
        await asyncio.wait_for(rec, 10)
        await bus.close()
        store.close()
        server.stop()
