"""The proxy on a real nats-server that goes down mid-run and comes back: every call is
served, spooled while the bus is away, replayed after, and stored exactly once."""

from __future__ import annotations

import asyncio

import openai
import pytest

from tentalis.bus import EmbeddedNats, NatsBus
from tentalis.gateway.proxy import create_proxy_app
from tentalis.gateway.proxy.config import ProxyConfig
from tentalis.gateway.publisher import EventPublisher
from tentalis.gateway.spool import Spool
from tentalis.store.sessions import session_view

pytestmark = pytest.mark.nats


async def test_bus_down_spools_then_replays_nothing_lost_or_doubled(
    serve, backend_app, tmp_path, store, gw
) -> None:
    server = EmbeddedNats(tmp_path / "nats").start()
    url, port = server.url, server.port

    async def connect() -> NatsBus:
        bus = NatsBus(url, connect_timeout=1.0, request_timeout=1.0)
        await bus.connect()
        return bus

    recorder_bus = await connect()
    config = ProxyConfig(backend_url="http://unused", spool_path=tmp_path / "spool.jsonl")
    publisher = EventPublisher(connect, Spool(config.spool_path), retry_interval=0.2,
                               publish_timeout=1.0)
    try:
        async with gw.recording(recorder_bus, store), serve(backend_app) as backend:
            config = config.model_copy(update={"backend_url": backend})
            async with serve(create_proxy_app(config, publisher)) as proxy_url:
                client = openai.AsyncOpenAI(base_url=proxy_url + "/v1", api_key="x",
                                            max_retries=0)
                history: list[dict[str, str]] = []

                async def say(text: str) -> None:
                    history.append({"role": "user", "content": text})
                    resp = await client.chat.completions.create(
                        model="tiny", messages=history, extra_headers={"X-Session-Id": "s-n"})
                    history.append({"role": "assistant",
                                    "content": resp.choices[0].message.content or ""})

                await say("one")
                await gw.wait_for(lambda: store.counts()["session"] == 1)
                server.stop()
                for word in ("two", "three", "four"):  # served while the bus is down
                    await asyncio.wait_for(say(word), 5)
                await publisher.flush()
                await gw.wait_for(lambda: len(publisher.spool) >= 1)
                server = EmbeddedNats(tmp_path / "nats", port=port).start()
                await say("five")
                await gw.wait_for(lambda: store.counts()["session"] == 5
                                  and store.counts()["session_link"] == 4, timeout=30)
                await publisher.close()
    finally:
        await recorder_bus.close()
        server.stop()
    view = session_view(store, "s-n")
    assert view is not None
    assert [t.completion for t in view.turns] == [f"echo: {w}" for w in
                                                 ("one", "two", "three", "four", "five")]
    assert [t.turn_index for t in view.turns] == [0, 1, 2, 3, 4]
    assert all(t.next_state is not None for t in view.turns[:4])
    assert store.counts()["total"] == 9  # 5 turns + 4 links, each once
    assert publisher.stats.spooled >= 1 and not publisher.spool
