"""The checks of ``examples/openclaw_e2e.sh`` (``examples/openclaw_e2e_check.py``) against
the real model server (the tiny model), proxy, recorder and bridge, with calls shaped as
OpenClaw sends them: streamed, no session header, timestamped user messages, the second
call repeating the first.

The checks must pass on such a conversation and fail when the proxy records no token ids
or the two calls do not land in one session — else the end-to-end run proves nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tentalis.bus.memory import MemoryBus
from tentalis.gateway.bridge import create_bridge_app
from tentalis.gateway.modelserver import create_model_app
from tentalis.gateway.proxy import create_proxy_app
from tentalis.gateway.proxy.config import ProxyConfig
from tentalis.gateway.publisher import EventPublisher
from tentalis.gateway.security import SecurityConfig
from tentalis.gateway.spool import Spool
from tentalis.inference.adapters import AdapterStore

CHECK = Path(__file__).parents[2] / "examples" / "openclaw_e2e_check.py"
SYSTEM = "You are a personal assistant running inside OpenClaw.\n## Tooling\n- exec: Run shell"
FIRST = "[Sat 2026-12-05 20:36 UTC] Hi! My name is Ada. Answer in one short sentence."
SECOND = "What is my name? Answer in one short sentence."


@contextlib.asynccontextmanager
async def gateway(serve: Any, backend: Any, store: Any, gw: Any, tmp: Path,
                  **proxy_config: Any) -> AsyncIterator[tuple[str, str]]:
    """Proxy and bridge over one bus, recorded into ``store``: (proxy URL, bridge URL)."""
    bus = MemoryBus()
    await bus.connect()
    bridge_pub = EventPublisher(bus, Spool(tmp / "bridge.jsonl"))
    async with gw.recording(bus, store), serve(backend) as backend_url:
        cfg = ProxyConfig(backend_url=backend_url + "/v1", spool_path=tmp / "proxy.jsonl",
                          **proxy_config)
        proxy_pub = EventPublisher(bus, Spool(cfg.spool_path), retry_interval=0.05)
        async with serve(create_proxy_app(cfg, proxy_pub)) as proxy_url, \
                serve(create_bridge_app(bus, bridge_pub, store)) as bridge_url:
            yield proxy_url, bridge_url


async def openclaw_turn(http: httpx.AsyncClient, messages: list[dict[str, Any]]) -> str:
    """One call as OpenClaw makes it; returns the streamed reply."""
    body = {"model": "base", "messages": messages, "stream": True, "max_tokens": 16,
            "stream_options": {"include_usage": True}}
    async with http.stream("POST", "/v1/chat/completions", json=body) as resp:
        assert resp.status_code == 200
        raw = (await resp.aread()).decode()
    parts = [json.loads(line[6:]) for line in raw.splitlines()
             if line.startswith("data: {")]
    return "".join((c["choices"][0]["delta"].get("content") or "")
                   for c in parts if c.get("choices"))


async def run_check(bridge_url: str, since: float) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(CHECK), "--bridge", bridge_url, "--since", str(since),
        "--expect", SECOND, "--timeout", "5",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


@pytest.mark.parametrize("case", ["whole", "no_token_ids", "two_sessions"])
async def test_the_checks_pass_only_on_two_linked_turns_with_token_ids(
    serve, tiny_llm, store, gw, tmp_path, case
) -> None:
    since = time.time() - 1
    config = {"training_data": case != "no_token_ids"}
    backend = create_model_app(tiny_llm, AdapterStore(tmp_path / "adapters"),
                               SecurityConfig(rate_limit_per_minute=0))
    async with gateway(serve, backend, store, gw, tmp_path, **config) as (proxy, bridge), \
            httpx.AsyncClient(base_url=proxy, timeout=30) as http:
        history = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": FIRST}]
        reply = await openclaw_turn(http, history)
        if case == "two_sessions":  # a system prompt that changed between the turns
            history[0] = {"role": "system", "content": SYSTEM + "\n## Skills"}
        history += [{"role": "assistant", "content": reply},
                    {"role": "user", "content": f"[Sat 2026-12-05 20:37 UTC] {SECOND}"}]
        await openclaw_turn(http, history)
        await gw.wait_for(lambda: store.counts()["session"] == 2)
        rc, out = await run_check(bridge, since)
    if case == "whole":
        assert rc == 0, out
        assert "checks: 5 ok, 0 failed" in out
    elif case == "no_token_ids":
        assert rc == 1, out
        assert "[FAIL] turn 0 carries token ids (0 prompt, 0 completion)" in out
        assert "[ok] linked" in out
    else:
        assert rc == 1, out
        assert "[FAIL] two trainable turns in one session (1)" in out
