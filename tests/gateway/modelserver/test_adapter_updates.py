"""The model server follows ModelUpdateEvents: verify, load beside, switch, report.

The server (real uvicorn, tiny model) and its :class:`ModelUpdateFollower` run on the
test's event loop, as they do in ``tentalis serve-model``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tentalis.bus import EmbeddedNats, NatsBus
from tentalis.bus.base import Bus
from tentalis.config import Settings
from tentalis.errors import BusError
from tentalis.events import AdapterLoadedEvent, Event, ModelUpdateEvent, Subjects
from tentalis.gateway.modelserver.updates import ModelUpdateFollower
from tentalis.inference.adapters import AdapterStore
from tentalis.inference.local import LocalInference
from tentalis.services.model_server import model_update_follower
from tentalis.store import ExperienceStore
from tentalis.training.registry import AdapterRegistry

HELLO = [{"role": "user", "content": "Say hello"}]


@contextlib.asynccontextmanager
async def serving(app: FastAPI, api_key: str) -> AsyncIterator[httpx.AsyncClient]:
    """``app`` on uvicorn (127.0.0.1, free port) in this loop; a client with the key."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0,
                                           log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                     headers={"Authorization": f"Bearer {api_key}"}) as http:
            yield http
    finally:
        server.should_exit = True
        await task


async def greedy(http: httpx.AsyncClient, model: str, max_tokens: int = 6) -> list[int]:
    resp = await http.post("/v1/chat/completions", json={
        "model": model, "messages": HELLO, "max_tokens": max_tokens, "temperature": 0,
        "return_token_ids": True})
    assert resp.status_code == 200, resp.text
    return resp.json()["choices"][0]["token_ids"]


async def models(http: httpx.AsyncClient) -> set[str]:
    return {m["id"] for m in (await http.get("/v1/models")).json()["data"]}


def update(store: AdapterStore, version: int, name: str = "policy",
           **fields: Any) -> ModelUpdateEvent:
    v = store.get(name, version)
    return ModelUpdateEvent(adapter_name=name, version=version, sha256=v.sha256,
                            path=str(v.path), source="trainer", **fields)


class Reports:
    """AdapterLoadedEvents as the bus carries them."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[AdapterLoadedEvent] = asyncio.Queue()
        self.seen: list[AdapterLoadedEvent] = []

    async def __call__(self, event: Event) -> None:
        if isinstance(event, AdapterLoadedEvent):
            self.seen.append(event)
            await self.queue.put(event)

    async def next(self, timeout: float = 20.0) -> AdapterLoadedEvent:
        return await asyncio.wait_for(self.queue.get(), timeout)


def connector(bus: Bus) -> Any:
    async def connect() -> Bus:
        return bus
    return connect


@pytest.fixture
async def reports(memory_bus) -> Reports:  # type: ignore[no-untyped-def]
    seen = Reports()
    await memory_bus.listen([Subjects.ADAPTER_LOADED], seen)
    return seen


@pytest.fixture
async def follower(model_app: FastAPI, memory_bus  # type: ignore[no-untyped-def]
                   ) -> AsyncIterator[ModelUpdateFollower]:
    """``policy`` v1 served (as at start-up), following the memory bus."""
    await model_app.state.served.load("policy", "policy@1")
    follower = ModelUpdateFollower(model_app.state.served, connector(memory_bus),
                                   retry_seconds=0.05).start()
    yield follower
    await follower.stop()


async def test_a_published_version_is_served_right_after(
    model_app: FastAPI, api_key: str, adapter_store: AdapterStore, memory_bus,  # type: ignore[no-untyped-def]
    follower: ModelUpdateFollower, reports: Reports, tmp_path: Path,
) -> None:
    async with serving(model_app, api_key) as http:
        assert await models(http) == {"base", "policy", "policy@1"}
        v1 = await greedy(http, "policy")
        published = update(adapter_store, 2, step=20)
        await memory_bus.publish(published)
        loaded = await reports.next()
        assert loaded.error is None and (loaded.worker_id, loaded.source) == ("model-server",) * 2
        assert (loaded.version, loaded.previous_version) == (2, 1)
        assert await models(http) == {"base", "policy", "policy@2"}
        v2 = await greedy(http, "policy")  # the very next request
        assert v2 != v1 and v2 == await greedy(http, "policy@2")
    assert follower.applied == 1 and follower.rejected == 0
    # the adapter registry (`tentalis adapters history`) lists the model server
    store = ExperienceStore(tmp_path / "store.db")
    try:
        store.append([published, loaded])
        registry = AdapterRegistry(store, adapter_store)
        assert [e.version for e in registry.history("model-server")] == [2]
        assert registry.current()["model-server"].version == 2
    finally:
        store.close()


async def test_a_bad_checksum_is_refused_reported_and_the_old_version_kept(
    model_app: FastAPI, api_key: str, adapter_store: AdapterStore, memory_bus,  # type: ignore[no-untyped-def]
    follower: ModelUpdateFollower, reports: Reports, tiny_llm: LocalInference,
) -> None:
    async with serving(model_app, api_key) as http:
        v1 = await greedy(http, "policy")
        await memory_bus.publish(update(adapter_store, 2).model_copy(
            update={"sha256": "0" * 64, "event_id": "tampered"}))
        refused = await reports.next()
        assert refused.worker_id == "model-server" and refused.version == 2
        assert refused.error is not None and "sha256" in refused.error
        assert refused.previous_version == 1
        assert await models(http) == {"base", "policy", "policy@1"}
        assert await greedy(http, "policy") == v1
    assert follower.rejected == 1 and tiny_llm.adapters() == ["policy.v1"]


async def test_requests_during_the_swap_all_succeed(
    model_app: FastAPI, api_key: str, adapter_store: AdapterStore, memory_bus,  # type: ignore[no-untyped-def]
    follower: ModelUpdateFollower, reports: Reports, tiny_llm: LocalInference,
) -> None:
    async with serving(model_app, api_key) as http:
        v1 = tuple(await greedy(http, "policy", max_tokens=4))
        statuses: list[int] = []
        answers: list[tuple[int, ...]] = []

        async def keep_asking(n: int) -> None:
            for _ in range(n):
                resp = await http.post("/v1/chat/completions", json={
                    "model": "policy", "messages": HELLO, "max_tokens": 4, "temperature": 0,
                    "return_token_ids": True})
                statuses.append(resp.status_code)
                answers.append(tuple(resp.json()["choices"][0]["token_ids"]))

        asking = asyncio.gather(*(keep_asking(6) for _ in range(4)))
        await asyncio.sleep(0.05)  # some requests are in flight on v1
        await memory_bus.publish(update(adapter_store, 2))
        loaded = await reports.next()
        await asking
        assert loaded.error is None
        assert statuses == [200] * 24
        v2 = tuple(await greedy(http, "policy@2", max_tokens=4))
        assert v1 != v2 and set(answers) == {v1, v2}  # the swap happened mid-stream
        assert answers.index(v2) > 0 and await greedy(http, "policy", 4) == list(v2)
    assert tiny_llm.adapters() == ["policy.v2"]  # v1 unloaded once its requests were done


async def test_targeted_updates_and_other_loaded_names(
    model_app: FastAPI, api_key: str, adapter_store: AdapterStore, memory_bus,  # type: ignore[no-untyped-def]
    follower: ModelUpdateFollower, reports: Reports, gateway_loras: list[Path],
) -> None:
    for src in gateway_loras:
        adapter_store.save_version("math", src)
    await model_app.state.served.load("math", "math@1")  # an admin loaded it by name
    async with serving(model_app, api_key) as http:
        for ignored in (update(adapter_store, 2, target_worker="worker-01"),
                        update(adapter_store, 2, "math", target_worker="worker-01")):
            await memory_bus.publish(ignored)
        await memory_bus.publish(update(adapter_store, 2, "math", target_worker="model-server"))
        loaded = await reports.next()
        assert (loaded.adapter_name, loaded.version, loaded.error) == ("math", 2, None)
        await memory_bus.publish(update(adapter_store, 2))
        assert (await reports.next()).adapter_name == "policy"
        assert [(e.adapter_name, e.version) for e in reports.seen] == [("math", 2), ("policy", 2)]
        assert await models(http) == {"base", "policy", "math", "policy@2", "math@2"}


async def test_serves_without_a_bus_and_follows_once_it_answers(
    model_app: FastAPI, api_key: str, adapter_store: AdapterStore, memory_bus,  # type: ignore[no-untyped-def]
    reports: Reports, caplog: pytest.LogCaptureFixture,
) -> None:
    served = model_app.state.served
    await served.load("policy", "policy@1")
    attempts = 0

    async def flaky() -> Bus:
        nonlocal attempts
        attempts += 1
        if attempts < 4:
            raise BusError("cannot connect to nats://127.0.0.1:1")
        return memory_bus

    follower = ModelUpdateFollower(served, flaky, retry_seconds=0.05).start()
    try:
        async with serving(model_app, api_key) as http:
            assert len(await greedy(http, "policy")) > 0  # served while the bus is down
            await memory_bus.publish(update(adapter_store, 2))
            assert (await reports.next()).error is None
            assert attempts == 4 and await models(http) == {"base", "policy", "policy@2"}
    finally:
        await follower.stop()
    assert sum("no bus" in r.message for r in caplog.records) == 1  # warned once, not per try


async def test_an_unreachable_nats_url_leaves_the_server_serving(
    model_app: FastAPI, api_key: str
) -> None:
    settings = Settings(nats_url="nats://127.0.0.1:1", nats_connect_timeout=1.0)
    follower = model_update_follower(model_app.state.served, settings)
    follower.retry_seconds = 0.05
    follower.start()
    try:
        async with serving(model_app, api_key) as http:
            await asyncio.sleep(0.3)  # a few refused connects
            assert len(await greedy(http, "base")) > 0 and follower.bus is None
    finally:
        await follower.stop()


@pytest.mark.nats
async def test_follows_updates_over_a_real_nats_server(
    model_app: FastAPI, api_key: str, adapter_store: AdapterStore, tmp_path: Path
) -> None:
    served = model_app.state.served
    await served.load("policy", "policy@1")
    with EmbeddedNats(tmp_path / "nats") as server:
        trainer = NatsBus(server.url)
        await trainer.connect()
        seen = Reports()
        stop_listening = await trainer.listen([Subjects.ADAPTER_LOADED], seen)
        settings = Settings(nats_url=server.url, model_server_id="ms-1")
        follower = model_update_follower(served, settings).start()
        try:
            async with serving(model_app, api_key) as http:
                await trainer.publish(update(adapter_store, 2, target_worker="ms-1"))
                loaded = await seen.next()
                assert (loaded.worker_id, loaded.version, loaded.error) == ("ms-1", 2, None)
                assert await models(http) == {"base", "policy", "policy@2"}
                assert await greedy(http, "policy") == await greedy(http, "policy@2")
        finally:
            await follower.stop()
            await stop_listening()
            await trainer.close()
