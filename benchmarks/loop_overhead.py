"""Orchestration cost per task: manager → NATS → worker → scorer → review → SQLite.

The workers answer instantly (a stub inference client, so only tentalis' own machinery
is measured) over a real nats-server started for the run. For 1 and 2 workers, it
reports tasks/s and the p50/p99 milliseconds from publishing a TaskEvent to its
FeedbackEvent being committed in the experience store.

    python benchmarks/loop_overhead.py [--tasks 2000] [--in-flight 64]

The results file (JSON, with the command and machine) goes to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tentalis.bus import EmbeddedNats, NatsBus
from tentalis.config import load_settings
from tentalis.demo.stats import percentile
from tentalis.events import Event, FeedbackEvent, TaskEvent
from tentalis.inference.base import ChatRequest, Completion
from tentalis.services.stack import LocalStack


class InstantInference:
    """Answers every request at once with a fixed, correct-looking completion."""

    model_name = "instant-stub"

    async def chat(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        text = "<step>2 + 3 = 5</step>\nAnswer: 5"
        return [Completion(text=text, completion_token_ids=[1, 2, 3]) for _ in requests]

    async def load_adapter(self, name: str, path: str) -> None: ...

    async def unload_adapter(self, name: str) -> None: ...

    def adapters(self) -> list[str]:
        return []

    async def close(self) -> None: ...


async def run_once(url: str, home: Path, workers: int, n: int, in_flight: int) -> dict:
    settings = load_settings(
        tentalis_home=home, tentalis_store=home / f"bench-{workers}.db",
        manager_max_in_flight=in_flight, task_timeout_seconds=60, inference_max_batch=32,
    )
    bus = NatsBus(url)
    await bus.connect()
    published: dict[str, float] = {}
    stored: dict[str, float] = {}
    stack = LocalStack(bus, InstantInference(), settings, workers=workers)
    original = stack.recorder.handle_batch

    async def timed(deliveries):  # type: ignore[no-untyped-def]
        await original(deliveries)  # the commit has happened when this returns
        now = time.perf_counter()
        for d in deliveries:
            if isinstance(d.event, FeedbackEvent) and d.event.task_id:
                stored.setdefault(d.event.task_id, now)

    stack.recorder.handle_batch = timed  # type: ignore[method-assign]
    async with stack:
        # warm-up: consumers created, connections and caches hot
        await stack.manager.submit([TaskEvent(prompt="warm", answer="5") for _ in range(50)])
        tasks = [TaskEvent(prompt=f"What is 2 + 3? ({i})", answer="5") for i in range(n)]
        original_publish = bus.publish

        async def stamped(event: Event) -> bool:
            if isinstance(event, TaskEvent):
                published[event.task_id] = time.perf_counter()
            return await original_publish(event)

        bus.publish = stamped  # type: ignore[method-assign]
        t0 = time.perf_counter()
        outcomes = await stack.manager.submit(tasks)
        deadline = time.perf_counter() + 60
        while sum(t.task_id in stored for t in tasks) < n and time.perf_counter() < deadline:
            await asyncio.sleep(0.005)
        wall = time.perf_counter() - t0
    await bus.close()
    lat = [1000 * (stored[t.task_id] - published[t.task_id]) for t in tasks if t.task_id in stored]
    return {
        "workers": workers,
        "tasks": n,
        "timed_out": sum(o.timed_out for o in outcomes),
        "not_stored": n - len(lat),
        "wall_s": round(wall, 3),
        "tasks_per_s": round(n / wall, 1),
        "p50_ms": round(percentile(lat, 50), 2),
        "p99_ms": round(percentile(lat, 99), 2),
        "feedback_seen_p50_ms": round(percentile([1000 * o.latency_s for o in outcomes], 50), 2),
    }


async def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--in-flight", type=int, default=64)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        with EmbeddedNats(home / "nats") as server:
            for workers in (1, 2):
                row = await run_once(server.url, home, workers, args.tasks, args.in_flight)
                rows.append(row)
                print(json.dumps(row))
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "loop_overhead.json"
    out.write_text(json.dumps({
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": rows,
    }, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
