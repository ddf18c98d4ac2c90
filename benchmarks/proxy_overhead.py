"""Latency the intercept proxy adds: the same backend called directly and through the proxy.

The backend is a minimal ASGI app under uvicorn that answers every chat completion at
once with a fixed body, so what differs between the two paths is the proxy's own cost:
one more HTTP hop, API-key check, session tracking, and recording the call as a
SessionEvent published to a real nats-server in the background. Backend, proxy and
nats-server each run in their own process; the client (httpx, non-streaming
``POST /v1/chat/completions``) runs here. For each concurrency it reports p50/p99
milliseconds and requests/s for both paths, the added milliseconds and the ratio.

    python benchmarks/proxy_overhead.py [--requests 2000] [--concurrency 1 16 64]

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

import httpx

from tentalis.bus import EmbeddedNats, NatsBus
from tentalis.bus.embedded import free_port
from tentalis.demo.stats import percentile

KEY = "tnt-benchmark-key-0123456789abcdefghijklmnop"
BODY = {"model": "instant", "messages": [{"role": "user", "content": "What is 2 + 3?"}],
        "max_tokens": 16}
ANSWER = json.dumps({
    "id": "c1", "object": "chat.completion", "model": "instant",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "2 + 3 = 5"}}],
    "usage": {"prompt_tokens": 8, "completion_tokens": 6, "total_tokens": 14},
}).encode()


async def instant_backend(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    """Answer any HTTP request with the fixed completion (the body is read and dropped)."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": ANSWER})


def serve_backend(port: int) -> None:
    import uvicorn

    uvicorn.run(instant_backend, host="127.0.0.1", port=port, log_level="error",
                access_log=False)


def serve_proxy(port: int, backend: str, nats_url: str, home: Path) -> None:
    import uvicorn

    from tentalis.gateway.proxy import create_proxy_app
    from tentalis.gateway.proxy.config import ProxyConfig
    from tentalis.gateway.publisher import EventPublisher
    from tentalis.gateway.security import SecurityConfig
    from tentalis.gateway.spool import Spool

    async def connect() -> NatsBus:
        bus = NatsBus(nats_url)
        await bus.connect()
        return bus

    config = ProxyConfig(backend_url=backend, spool_path=home / "spool.jsonl")
    app = create_proxy_app(config, EventPublisher(connect, Spool(config.spool_path)),
                           SecurityConfig.with_keys(KEY, rate_limit_per_minute=0))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


def spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, *args])


async def wait_up(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            try:
                await http.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


async def measure(url: str, n: int, concurrency: int) -> dict[str, float]:
    """p50/p99 ms and requests/s of ``n`` chat completions, ``concurrency`` at a time."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {KEY}", "X-Session-Id": "bench"}
    latencies: list[float] = []
    failed = 0
    async with httpx.AsyncClient(base_url=url, limits=limits, headers=headers,
                                 timeout=60) as http:
        for _ in range(min(n, 200)):  # warm-up: connections open, caches hot
            (await http.post("/v1/chat/completions", json=BODY)).raise_for_status()
        queue = iter(range(n))

        async def client() -> None:
            nonlocal failed
            for _ in queue:
                t0 = time.perf_counter()
                try:
                    r = await http.post("/v1/chat/completions", json=BODY)
                    r.raise_for_status()
                except httpx.HTTPError:
                    failed += 1
                    continue
                latencies.append(1000 * (time.perf_counter() - t0))

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return {"p50_ms": round(percentile(latencies, 50), 3),
            "p99_ms": round(percentile(latencies, 99), 3), "rps": round(n / wall, 1),
            "failed": failed}


async def stored_events(nats_url: str) -> int:
    bus = NatsBus(nats_url)
    await bus.connect()
    try:
        return (await bus.info()).subjects.get("tentalis.ev.session", 0)
    finally:
        await bus.close()


async def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, EmbeddedNats(Path(tmp) / "nats") as nats:
        bport, pport = free_port(), free_port()
        backend = f"http://127.0.0.1:{bport}"
        procs = [spawn("--serve-backend", str(bport)),
                 spawn("--serve-proxy", str(pport), backend, nats.url, tmp)]
        try:
            await wait_up(backend)
            await wait_up(f"http://127.0.0.1:{pport}/health")
            for c in args.concurrency:
                direct = await measure(backend, args.requests, c)
                proxied = await measure(f"http://127.0.0.1:{pport}", args.requests, c)
                row = {"concurrency": c, "requests": args.requests, "direct": direct,
                       "proxy": proxied,
                       "added_p50_ms": round(proxied["p50_ms"] - direct["p50_ms"], 3),
                       "added_p99_ms": round(proxied["p99_ms"] - direct["p99_ms"], 3),
                       "p50_ratio": round(proxied["p50_ms"] / direct["p50_ms"], 2)}
                rows.append(row)
                print(json.dumps(row))
            await asyncio.sleep(1.0)  # the publisher flushes in the background
            published = await stored_events(nats.url)
        finally:
            for p in procs:
                p.terminate()
                p.wait(10)
    expected = sum(args.requests + min(args.requests, 200) for _ in args.concurrency)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "proxy_overhead.json"
    out.write_text(json.dumps({
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "how": "instant ASGI backend (uvicorn), proxy (uvicorn, API key, SessionEvents to a "
               "real nats-server) and nats-server in separate processes; httpx client here; "
               "non-streaming chat completions; direct and proxied runs alternate per "
               "concurrency on the same backend",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform()},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "session_events_published": published,
        "calls_through_proxy": expected,
        "results": rows,
    }, indent=2))
    print(f"session events on the bus: {published} of {expected} proxied calls")
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--serve-backend":
        serve_backend(int(sys.argv[2]))
    elif len(sys.argv) > 2 and sys.argv[1] == "--serve-proxy":
        serve_proxy(int(sys.argv[2]), sys.argv[3], sys.argv[4], Path(sys.argv[5]))
    else:
        asyncio.run(main(sys.argv[1:]))
