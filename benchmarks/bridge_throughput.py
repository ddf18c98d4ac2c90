"""The bridge's submit-to-result rate: tasks posted over HTTP until their feedback comes back.

Four processes: a real nats-server; the bridge as ``tentalis bridge`` runs it (its own
process and uvicorn, API key checked, rate limit off); the loop (manager, scorer,
recorder and N workers of :class:`~tentalis.services.stack.LocalStack`) whose workers
answer instantly (:class:`InstantInference`, so only tentalis' machinery is measured);
and the client here (httpx). C clients each post ``POST /v1/tasks`` and wait for that
task's result before posting the next, so C tasks are in flight.

A task's result is its manager review, the FeedbackEvent that ends the loop. It is seen
on the bridge's ``GET /v1/events?subjects=feedback`` stream (Server-Sent Events, opened
before the first post), not by polling, so the clients add no load of their own to the
bridge; latency is from sending the POST to reading that event. After the run every task
is read back with ``GET /v1/tasks/{id}`` and counted as ``done`` once the store has its
feedback (the recorder commits just after the event is published). ``--detect poll``
instead polls ``GET /v1/tasks/{id}`` every 10 ms until it has feedback: the latency a
polling client sees, store commit included, with the polls loading the bridge.

    python benchmarks/bridge_throughput.py [--tasks 200] [--concurrency 1 16 64]

The results file (JSON, with the command and machine) goes to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tentalis.bus import EmbeddedNats
from tentalis.bus.embedded import free_port
from tentalis.demo.stats import percentile

KEY = "tnt-benchmark-key-0123456789abcdefghijklmnop"
HEADERS = {"Authorization": f"Bearer {KEY}"}
RESULT_TIMEOUT_S = 60.0


def serve_stack(nats_url: str, home: Path, workers: int) -> None:
    """The loop with instant workers, until killed; ``<home>/stack.ready`` once consuming."""
    sys.path.insert(0, str(Path(__file__).parent))
    from loop_overhead import InstantInference

    from tentalis.bus import NatsBus
    from tentalis.config import load_settings
    from tentalis.services.stack import LocalStack

    async def run() -> None:
        settings = load_settings(tentalis_home=home, tentalis_store=home / "bench.db",
                                 task_timeout_seconds=RESULT_TIMEOUT_S, inference_max_batch=32,
                                 log_level="WARNING")
        bus = NatsBus(nats_url)
        await bus.connect()
        async with LocalStack(bus, InstantInference(), settings, workers=workers):
            (home / "stack.ready").touch()
            await asyncio.Event().wait()

    asyncio.run(run())


def spawn_bridge(port: int, nats_url: str, home: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NATS_URL": nats_url, "NATS_EMBEDDED": "never",
           "TENTALIS_HOME": str(home), "TENTALIS_STORE": str(home / "bench.db"),
           "GATEWAY_API_KEYS": KEY, "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
           "LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "tentalis", "bridge", "--port", str(port),
                             "--host", "127.0.0.1"], env=env)


async def wait_up(url: str, ready: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a benchmark process exited during start-up")
            try:
                if (await http.get(url)).status_code == 200 and ready.exists():
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} or the loop did not come up")


class FeedbackWatch:
    """Arrival times of feedback events on the bridge's SSE stream, keyed by task id."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.dropped = 0
        self._waiters: dict[str, asyncio.Future[float]] = {}
        self.listening = asyncio.Event()

    async def run(self, http: httpx.AsyncClient) -> None:
        async with http.stream("GET", "/v1/events", params={"subjects": "feedback"},
                               timeout=None) as resp:
            resp.raise_for_status()
            async for line in resp.aiter_lines():
                if line.startswith(": listening"):
                    self.listening.set()
                elif line.startswith(": dropped"):
                    self.dropped += int(line.split()[-1])
                elif line.startswith("data: "):
                    task_id = json.loads(line[6:]).get("task_id")
                    now = time.perf_counter()
                    if task_id and task_id not in self.seen:
                        self.seen[task_id] = now
                        if (w := self._waiters.pop(task_id, None)) is not None:
                            w.set_result(now)

    async def wait(self, task_id: str) -> float:
        if task_id in self.seen:
            return self.seen[task_id]
        w = self._waiters.setdefault(task_id, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(w, RESULT_TIMEOUT_S)


async def poll_until_feedback(http: httpx.AsyncClient, task_id: str) -> float:
    deadline = time.perf_counter() + RESULT_TIMEOUT_S
    while time.perf_counter() < deadline:
        r = await http.get(f"/v1/tasks/{task_id}")
        if r.status_code == 200 and r.json()["feedback"]:
            return time.perf_counter()
        await asyncio.sleep(0.01)
    raise TimeoutError(task_id)


async def measure(url: str, n: int, concurrency: int, detect: str, run: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=concurrency + 2,
                          max_keepalive_connections=concurrency + 2)
    latencies: list[float] = []
    ids: list[str] = []
    failed = 0
    async with httpx.AsyncClient(base_url=url, headers=HEADERS, limits=limits,
                                 timeout=30) as http:
        watch = FeedbackWatch()
        reader = asyncio.create_task(watch.run(http)) if detect == "sse" else None
        if reader is not None:
            await asyncio.wait_for(watch.listening.wait(), 10)
        queue = iter(range(n))

        async def client() -> None:
            nonlocal failed
            for i in queue:
                t0 = time.perf_counter()
                try:
                    r = await http.post("/v1/tasks", json={
                        "prompt": f"What is 2 + 3? (run {run}, task {i})", "answer": "5"})
                    r.raise_for_status()
                    task_id = r.json()["task_id"]
                    ids.append(task_id)
                    if detect == "sse":
                        done = await watch.wait(task_id)
                    else:
                        done = await poll_until_feedback(http, task_id)
                except (httpx.HTTPError, TimeoutError):
                    failed += 1
                    continue
                latencies.append(1000 * (done - t0))

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
        if reader is not None:
            reader.cancel()
        done = await read_back(http, ids)
    return {"concurrency": concurrency, "tasks": n, "detect": detect,
            "results": len(latencies), "failed_or_timed_out": failed,
            "done_when_read_back": done, "sse_dropped": watch.dropped if reader else None,
            "wall_s": round(wall, 3), "tasks_per_s": round(len(latencies) / wall, 1),
            "p50_ms": round(percentile(latencies, 50), 2),
            "p99_ms": round(percentile(latencies, 99), 2)}


async def read_back(http: httpx.AsyncClient, ids: list[str]) -> int:
    """How many of ``ids`` the bridge reads as ``done`` with feedback (waits up to 10 s)."""
    pending, done = set(ids), 0
    deadline = time.perf_counter() + 10
    while pending and time.perf_counter() < deadline:
        for task_id in list(pending):
            body = (await http.get(f"/v1/tasks/{task_id}")).json()
            if body.get("status") == "done" and body.get("feedback"):
                pending.discard(task_id)
                done += 1
        if pending:
            await asyncio.sleep(0.1)
    return done


async def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--detect", choices=["sse", "poll"], nargs="+", default=["sse"])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    rows: list[dict[str, Any]] = []
    load_at_start = os.getloadavg()  # other work on the machine skews every figure
    with tempfile.TemporaryDirectory() as tmp, EmbeddedNats(Path(tmp) / "nats") as nats:
        home, port = Path(tmp), free_port()
        url = f"http://127.0.0.1:{port}"
        procs = [spawn_bridge(port, nats.url, home),
                 subprocess.Popen([sys.executable, __file__, "--serve-stack", nats.url, tmp,
                                   str(args.workers)])]
        try:
            await wait_up(f"{url}/health", home / "stack.ready", procs)
            await measure(url, min(args.tasks, 50), 8, "sse", run=0)  # warm-up
            for detect in args.detect:
                for c in args.concurrency:
                    row = await measure(url, args.tasks, c, detect, run=len(rows) + 1)
                    rows.append(row)
                    print(json.dumps(row))
        finally:
            for p in procs:
                p.terminate()
                p.wait(10)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "bridge_throughput.json"
    out.write_text(json.dumps({
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "how": "nats-server, `tentalis bridge` (uvicorn, API key, rate limit off) and the loop "
               f"(LocalStack: manager, scorer, recorder, {args.workers} instant worker(s)) in "
               "separate processes; httpx clients here, each posting one task and waiting "
               "for its review feedback before the next; 'sse': feedback seen on the "
               "bridge's /v1/events stream, 'poll': GET /v1/tasks/{id} every 10 ms until it "
               "has feedback; latency from sending the POST; a 50-task warm-up first",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                    "load_avg_1_5_15_at_start": list(load_at_start)},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": rows,
    }, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--serve-stack":
        serve_stack(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]))
    else:
        asyncio.run(main(sys.argv[1:]))
