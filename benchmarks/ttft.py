"""Time to first token and total time, streamed vs not, through the model server and the proxy.

The model server (the local engine on SmolLM2-135M-Instruct if ``tentalis init`` cached
it, else the tiny random test model) and the intercept proxy in front of it (recording
every call to an in-memory bus) each run in their own process under uvicorn; the client
(httpx) runs here. Each round sends ``concurrency`` identical greedy chat completions at
once (they share one engine batch), ``--repeats`` rounds per path and mode. Time to first
token: streamed, the arrival of the first chunk with text; not streamed, the whole answer
(its first token arrives with its last). Reported per path × mode × concurrency: median
and max of both, and the completion tokens.

    python benchmarks/ttft.py [--repeats 5] [--max-tokens 64] [--concurrency 1 4] [--threads 1]

The results file (JSON, with the command, machine and versions) goes to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tentalis.bus.embedded import free_port

KEY = "tnt-benchmark-key-0123456789abcdefghijklmnop"
PROMPT = "Write a short story about a robot who learns to paint. Use simple words."


def pick_model(tmp: Path) -> tuple[Path, str]:
    """SmolLM2 if cached (never downloads), else the tiny model built into ``tmp``."""
    from tentalis.config.paths import default_home
    from tentalis.models import SMOLLM2_ALIAS, ModelStore

    path = ModelStore(default_home()).cached_path(SMOLLM2_ALIAS)
    if path is not None:
        return path, SMOLLM2_ALIAS
    from tentalis.models.tiny import build_tiny_llama

    return build_tiny_llama(tmp / "tiny"), "tiny-random-llama"


def serve_model(port: str, model_dir: str, name: str, adapters: str, threads: str) -> None:
    import uvicorn

    from tentalis.gateway.modelserver import create_model_app
    from tentalis.gateway.security import SecurityConfig
    from tentalis.inference.adapters import AdapterStore
    from tentalis.inference.local import LocalInference

    engine = LocalInference(model_dir, device="cpu", model_name=name,
                            num_threads=int(threads) or None)
    app = create_model_app(engine, AdapterStore(adapters),
                           SecurityConfig.with_keys(KEY, rate_limit_per_minute=0))
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="error", access_log=False)


def serve_proxy(port: int, backend: str, home: str) -> None:
    import uvicorn

    from tentalis.bus.memory import MemoryBus
    from tentalis.gateway.proxy import create_proxy_app
    from tentalis.gateway.proxy.config import ProxyConfig
    from tentalis.gateway.publisher import EventPublisher
    from tentalis.gateway.spool import Spool

    async def connect() -> MemoryBus:
        bus = MemoryBus()
        await bus.connect()
        return bus

    config = ProxyConfig(backend_url=backend, backend_api_key=KEY,
                         spool_path=Path(home) / "spool.jsonl")
    app = create_proxy_app(config, EventPublisher(connect, Spool(config.spool_path)))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


def spawn(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, __file__, *args])


async def wait_up(url: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def one(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, float]:
    """Seconds to the first token and to the end of one call; completion tokens."""
    t0 = time.perf_counter()
    if not body["stream"]:
        resp = await http.post("/v1/chat/completions", json=body)
        resp.raise_for_status()
        total = time.perf_counter() - t0
        return {"ttft": total, "total": total,
                "tokens": resp.json()["usage"]["completion_tokens"]}
    first = None
    tokens = 0
    async with http.stream("POST", "/v1/chat/completions", json=body) as resp:
        resp.raise_for_status()
        async for line in resp.aiter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    first = first or time.perf_counter()
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    total = time.perf_counter() - t0
    return {"ttft": (first or time.perf_counter()) - t0, "total": total, "tokens": tokens}


async def measure(url: str, *, stream: bool, concurrency: int, repeats: int,
                  max_tokens: int) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "base", "messages": [{"role": "user", "content": PROMPT}],
                            "max_tokens": max_tokens, "temperature": 0, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    runs: list[dict[str, float]] = []
    async with httpx.AsyncClient(base_url=url, timeout=600,
                                 headers={"Authorization": f"Bearer {KEY}"}) as http:
        await one(http, {**body, "max_tokens": 4})  # warm-up: connection, first batch
        for _ in range(repeats):
            runs += await asyncio.gather(*(one(http, body) for _ in range(concurrency)))
    ttft = [1000 * r["ttft"] for r in runs]
    total = [1000 * r["total"] for r in runs]
    return {"calls": len(runs), "ttft_ms_median": round(statistics.median(ttft), 1),
            "ttft_ms_max": round(max(ttft), 1),
            "total_ms_median": round(statistics.median(total), 1),
            "total_ms_max": round(max(total), 1),
            "completion_tokens": sorted({int(r["tokens"]) for r in runs})}


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("tentalis", "torch", "transformers", "fastapi",
                                    "uvicorn", "httpx")}


async def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads of the model server (0: torch's default)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, model = pick_model(Path(tmp))
        mport, pport = free_port(), free_port()
        direct, proxied = f"http://127.0.0.1:{mport}", f"http://127.0.0.1:{pport}"
        procs = [spawn("--serve-model", str(mport), str(model_dir), model, f"{tmp}/adapters",
                       str(args.threads)),
                 spawn("--serve-proxy", str(pport), direct + "/v1", tmp)]
        try:
            await wait_up(direct + "/health")
            await wait_up(proxied + "/health")
            for c in args.concurrency:
                for path, url in (("model_server", direct), ("proxy", proxied)):
                    for stream in (True, False):
                        row = {"path": path, "stream": stream, "concurrency": c,
                               **await measure(url, stream=stream, concurrency=c,
                                               repeats=args.repeats,
                                               max_tokens=args.max_tokens)}
                        rows.append(row)
                        print(json.dumps(row), flush=True)
        finally:
            for p in procs:
                p.terminate()
                p.wait(10)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "ttft.json"
    out.write_text(json.dumps({
        "command": " ".join(["python", *sys.argv]),
        "how": f"model server (LocalInference on CPU, threads={args.threads or 'default'}) "
               "and proxy (in-memory "
               "bus) in separate uvicorn processes, httpx client here; greedy chat "
               f"completions of one prompt, max_tokens={args.max_tokens}; each round sends "
               "`concurrency` calls at once; TTFT = first chunk with text (streamed) or the "
               "whole answer (not streamed)",
        "model": model,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "platform": platform.platform(), "processor": platform.processor(),
                    "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()]},
        "versions": versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": rows,
    }, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) > 6 and sys.argv[1] == "--serve-model":
        serve_model(*sys.argv[2:7])
    elif len(sys.argv) > 4 and sys.argv[1] == "--serve-proxy":
        serve_proxy(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        asyncio.run(main(sys.argv[1:]))
