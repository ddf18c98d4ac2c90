"""The proxy, the bridge and the model server heartbeat like the loop services, so
``tentalis status`` shows them; the proxy keeps serving while its beats cannot go out."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from tentalis.bus import EmbeddedNats, NatsBus
from tentalis.bus.base import Bus
from tentalis.bus.embedded import free_port
from tentalis.bus.memory import MemoryBus
from tentalis.errors import BusError
from tentalis.gateway.bridge import create_bridge_app
from tentalis.gateway.modelserver import create_model_app
from tentalis.gateway.proxy import create_proxy_app
from tentalis.gateway.proxy.config import ProxyConfig
from tentalis.gateway.publisher import EventPublisher
from tentalis.gateway.security import SecurityConfig
from tentalis.gateway.spool import Spool
from tentalis.inference.adapters import AdapterStore
from tentalis.inference.base import ChatRequest, Completion
from tentalis.services.gateway import publisher_stats
from tentalis.services.heartbeat import BusSource, OptionalBus
from tentalis.services.http_service import HttpService
from tentalis.services.model_server import model_server_stats
from tentalis.store import ExperienceStore

BEAT = 0.05
CHAT = {"model": "instant", "messages": [{"role": "user", "content": "2 + 3?"}]}
ANSWER = json.dumps({"id": "c1", "object": "chat.completion", "model": "instant",
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": "5"}}]}).encode()


async def instant_backend(scope: Any, receive: Any, send: Any) -> None:
    """Any HTTP request → the fixed chat completion."""
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": ANSWER})


class InstantInference:
    model_name = "instant-stub"

    async def chat(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        return [Completion(text="5", completion_token_ids=[1]) for _ in requests]

    async def load_adapter(self, name: str, path: str) -> None: ...

    async def unload_adapter(self, name: str) -> None: ...

    def adapters(self) -> list[str]:
        return []

    async def close(self) -> None: ...


@contextlib.asynccontextmanager
async def running(service: HttpService) -> AsyncIterator[str]:
    """Serve ``service`` while the block runs; yield its base URL."""
    task = asyncio.create_task(service.serve())
    while service.port is None:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{service.port}"
    finally:
        service.stop()
        await asyncio.wait_for(task, 10)


async def entry(bus: Bus, key: str, ready: Callable[[dict[str, Any]], bool] = lambda v: True,
                timeout: float = 10.0) -> dict[str, Any]:
    """The health entry ``key`` once ``ready(entry)`` holds (AssertionError on timeout)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        value = (await bus.get_health()).get(key)
        if value is not None and ready(value):
            return value
        await asyncio.sleep(BEAT)
    raise AssertionError(f"no health entry {key!r} matching in {timeout}s: "
                         f"{(await bus.get_health()).get(key)}")


def proxy_service(tmp_path: Path, bus: Bus | BusSource, publisher_bus: Any) -> HttpService:
    config = ProxyConfig(backend_url="http://backend", spool_path=tmp_path / "spool.jsonl")
    publisher = EventPublisher(publisher_bus, Spool(config.spool_path), retry_interval=0.1,
                               publish_timeout=1.0)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(instant_backend),
                               base_url="http://backend")
    app = create_proxy_app(config, publisher, client=client)
    return HttpService(app, host="127.0.0.1", port=0, kind="proxy", bus=bus,
                       stats=lambda: publisher_stats(publisher), interval=BEAT)


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    b = MemoryBus()
    await b.connect()
    yield b
    await b.close()


async def test_proxy_heartbeat_has_port_requests_and_publisher_counts(bus, tmp_path) -> None:
    service = proxy_service(tmp_path, bus, bus)
    async with running(service) as url, httpx.AsyncClient(base_url=url) as http:
        for _ in range(3):
            (await http.post("/v1/chat/completions", json=CHAT)).raise_for_status()
        await http.get("/health")  # not counted
        key = f"proxy-{service.port}"
        v = await entry(bus, key, lambda v: v["requests"] == 3 and v["published"] == 5)
    assert v["kind"] == "proxy" and v["status"] == "running"
    assert v["port"] == service.port  # 3 calls → 3 SessionEvents + 2 next-state links
    assert (v["errors"], v["buffered"], v["spooled"], v["replayed"]) == (0, 0, 0, 0)
    assert (await bus.get_health())[key]["status"] == "stopped"


async def test_proxy_serves_and_spools_while_no_bus_takes_its_beats(tmp_path) -> None:
    async def unreachable() -> Bus:
        raise BusError("nothing at nats://127.0.0.1:1 (test)")

    beats = OptionalBus(unreachable, retry_s=BEAT)
    service = proxy_service(tmp_path, beats.get, unreachable)
    async with running(service) as url, httpx.AsyncClient(base_url=url, timeout=5) as http:
        for _ in range(3):
            (await http.post("/v1/chat/completions", json=CHAT)).raise_for_status()
        await asyncio.sleep(5 * BEAT)  # several beats skipped
        stats = await service.stats()
    assert stats["requests"] == 3
    assert stats["buffered"] + stats["spooled"] == 5  # 3 turns + 2 links, kept for the bus


async def test_bridge_heartbeat(bus, tmp_path) -> None:
    store = ExperienceStore(tmp_path / "x.db")
    publisher = EventPublisher(bus, Spool(tmp_path / "bridge.jsonl"))
    app = create_bridge_app(bus, publisher, store)
    service = HttpService(app, host="127.0.0.1", port=0, kind="bridge", bus=bus,
                          stats=lambda: publisher_stats(publisher), interval=BEAT)
    try:
        async with running(service) as url, httpx.AsyncClient(base_url=url) as http:
            r = await http.post("/v1/tasks", json={"prompt": "What is 2 + 3?", "answer": "5"})
            assert r.status_code == 202
            assert (await http.get("/v1/tasks/unknown")).status_code == 404
            v = await entry(bus, f"bridge-{service.port}", lambda v: v["requests"] == 2)
    finally:
        store.close()
    assert v["kind"] == "bridge" and v["port"] == service.port and v["errors"] == 0
    assert {"buffered", "spooled", "published"} <= set(v)


async def test_model_server_heartbeat_lists_loaded_adapters(bus, tmp_path) -> None:
    src = tmp_path / "lora"
    src.mkdir()
    (src / "adapter_config.json").write_text("{}")
    (src / "adapter_model.safetensors").write_bytes(b"weights (test)")  # never loaded
    store = AdapterStore(tmp_path / "adapters")
    store.save_version("policy", src)
    app = create_model_app(InstantInference(), store, SecurityConfig())
    service = HttpService(app, host="127.0.0.1", port=0, kind="model-server", bus=bus,
                          stats=lambda: model_server_stats(app), lifespan="off", interval=BEAT)
    async with running(service) as url, httpx.AsyncClient(base_url=url) as http:
        key = f"model-server-{service.port}"
        v = await entry(bus, key)
        assert (v["model"], v["adapters"]) == ("instant-stub", [])
        r = await http.post("/v1/load_lora_adapter",
                            json={"lora_name": "policy", "lora_path": "policy@1"})
        assert r.status_code == 200, r.text
        v = await entry(bus, key, lambda v: v["adapters"] == ["policy", "policy@1"])
    assert v["kind"] == "model-server" and v["requests"] == 1


@pytest.mark.nats
async def test_proxy_beats_on_real_nats_skip_while_it_is_down_and_resume(tmp_path) -> None:
    server = EmbeddedNats(tmp_path / "nats").start()
    url, port = server.url, server.port

    async def connect() -> NatsBus:
        b = NatsBus(url, connect_timeout=1.0, request_timeout=1.0)
        await b.connect()
        return b

    reader = await connect()
    beats = OptionalBus(connect, retry_s=BEAT, timeout_s=2.0)
    service = proxy_service(tmp_path, beats.get, connect)
    try:
        async with running(service) as proxy, httpx.AsyncClient(base_url=proxy,
                                                                timeout=5) as http:
            key = f"proxy-{service.port}"
            await http.post("/v1/chat/completions", json=CHAT)
            before = await entry(reader, key, lambda v: v["requests"] == 1)
            server.stop()
            for _ in range(3):  # answered at once while the bus is away
                r = await asyncio.wait_for(http.post("/v1/chat/completions", json=CHAT), 2)
                r.raise_for_status()
            await asyncio.sleep(10 * BEAT)
            server = EmbeddedNats(tmp_path / "nats", port=port).start()
            after = await entry(reader, key, lambda v: v["requests"] == 4, timeout=15)
    finally:
        await beats.close()
        await reader.close()
        server.stop()
    assert after["last_beat"] > before["last_beat"]
    assert after["port"] == before["port"] == service.port


@pytest.mark.nats
async def test_tentalis_proxy_process_beats_and_says_stopped_after_sigterm(tmp_path) -> None:
    """The real entry point: `tentalis proxy` appears in the health bucket, and its last
    beat goes out even though uvicorn re-raises SIGTERM once it has shut down."""
    port = free_port()
    with EmbeddedNats(tmp_path / "nats") as server:
        reader = NatsBus(server.url)
        await reader.connect()
        env = {**os.environ, "NATS_URL": server.url, "NATS_EMBEDDED": "never",
               "TENTALIS_HOME": str(tmp_path / "home"), "LOG_LEVEL": "WARNING",
               "INTERCEPT_BACKEND_URL": "http://127.0.0.1:9"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tentalis", "proxy", "--port", str(port), env=env)
        try:
            v = await entry(reader, f"proxy-{port}", timeout=60)
            assert (v["kind"], v["port"], v["pid"]) == ("proxy", port, proc.pid)
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 30)
            v = await entry(reader, f"proxy-{port}", lambda v: v["status"] == "stopped")
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await reader.close()
