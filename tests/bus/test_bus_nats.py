"""What only the NATS bus has: the stream and bucket it creates, and their updates."""

from __future__ import annotations

import asyncio

import nats
import pytest

from tentalis.bus import ConsumerSpec, EmbeddedNats, NatsBus
from tentalis.events import Subjects

pytestmark = pytest.mark.nats


async def test_connect_creates_the_stream_and_health_bucket(nats_server: EmbeddedNats) -> None:
    bus = NatsBus(nats_server.url, max_age_days=2, duplicate_window=30)
    await bus.connect()
    await bus.close()

    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        stream = (await js.stream_info(Subjects.STREAM)).config
        assert stream.subjects == [Subjects.ALL]
        assert stream.storage == "file" and stream.retention == "limits"
        assert stream.max_age == pytest.approx(2 * 86400)
        assert stream.duplicate_window == pytest.approx(30)
        kv = await js.key_value(Subjects.HEALTH_BUCKET)
        status = await kv.status()
        assert status.history == 1 and status.ttl == pytest.approx(3600)
    finally:
        await nc.close()


async def test_reconnecting_with_other_limits_updates_the_stream(
    nats_server: EmbeddedNats,
) -> None:
    for days in (7, 1):
        bus = NatsBus(nats_server.url, max_age_days=days)
        await bus.connect()
        await bus.close()
    nc = await nats.connect(nats_server.url)
    try:
        stream = await nc.jetstream().stream_info(Subjects.STREAM)
        assert stream.config.max_age == pytest.approx(86400)
    finally:
        await nc.close()


async def test_consumers_are_durable_and_keep_their_settings(nats_server: EmbeddedNats) -> None:
    bus = NatsBus(nats_server.url)
    await bus.connect()
    spec = ConsumerSpec(
        "workers-math",
        [Subjects.task("math"), Subjects.task("chat")],
        ack_wait=7,
        max_deliver=4,
        fetch_timeout=0.1,
    )
    batches = bus.consume(spec)
    with pytest.raises(TimeoutError):  # nothing published: the reader just waits
        await asyncio.wait_for(anext(batches), 0.5)
    await bus.close()

    nc = await nats.connect(nats_server.url)
    try:
        info = await nc.jetstream().consumer_info(Subjects.STREAM, "workers-math")
        assert info.config.durable_name == "workers-math"
        assert info.config.filter_subjects == list(spec.subjects)
        assert info.config.ack_wait == pytest.approx(7)
        assert info.config.max_deliver == 4
        assert info.config.ack_policy == "explicit"
    finally:
        await nc.close()
