"""``tentalis serve``: every service as its own process, restarted if it dies.

The supervisor resolves NATS once (starting the embedded server when none answers) and
hands the URL to its children, so they all share one bus. A child that exits unexpectedly
is restarted with exponential backoff; one that keeps crashing (more than ``max_restarts``
within ``restart_window`` seconds) is left down and reported. Ctrl-C (SIGINT) or SIGTERM
stops the children (SIGTERM, then SIGKILL after a grace period), then the embedded server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tentalis.bus import resolve_nats
from tentalis.config import Settings
from tentalis.services.gateway import gateway_children, security_config

log = logging.getLogger(__name__)


@dataclass
class Child:
    name: str
    args: list[str]
    env: dict[str, str]
    process: asyncio.subprocess.Process | None = None
    restarts: list[float] = field(default_factory=list)
    given_up: bool = False


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        *,
        workers: int = 1,
        max_restarts: int = 5,
        restart_window: float = 60.0,
        grace: float = 10.0,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.workers = workers
        self.max_restarts = max_restarts
        self.restart_window = restart_window
        self.grace = grace
        self.on_event = on_event or (lambda msg: log.info("%s", msg))
        self.children: list[Child] = []
        self.nats_url: str | None = None

    def _children(self, url: str) -> list[Child]:
        base = {**os.environ, "NATS_URL": url, "NATS_EMBEDDED": "never"}
        cmd = [sys.executable, "-m", "tentalis"]
        kids = [Child(k, [*cmd, k], dict(base)) for k in ("recorder", "scorer", "manager")]
        kids += [Child(k, [*cmd, k], dict(base)) for k in gateway_children(self.settings)]
        if self.settings.gateway.model_server_enabled:
            kids.append(Child("model-server", [*cmd, "serve-model"], dict(base)))
        self._link_proxy_to_model_server(kids)
        for i in range(self.workers):
            wid = f"worker-{i + 1:02d}"
            kids.append(Child(wid, [*cmd, "worker"], {**base, "WORKER_ID": wid}))
        return kids

    def _link_proxy_to_model_server(self, kids: list[Child]) -> None:
        """Give the proxy a credential for the model server it forwards to.

        With API keys configured, the model server asks every caller for one — the proxy
        too, and the keys may exist only hashed (``tentalis keys add``). When the proxy's
        backend is this serve's own model server and no INTERCEPT_BACKEND_API_KEY is set,
        both get one random key for this run: the model server accepts it beside the
        configured ones, the proxy presents it. Without keys nothing changes."""
        gateway = self.settings.gateway
        by_name = {k.name: k for k in kids}
        proxy, model = by_name.get("proxy"), by_name.get("model-server")
        if (proxy is None or model is None or gateway.intercept_backend_url
                or gateway.intercept_backend_api_key is not None
                or not security_config(self.settings).key_hashes):
            return
        key = secrets.token_urlsafe(32)
        configured = model.env.get("GATEWAY_API_KEYS", "")
        model.env["GATEWAY_API_KEYS"] = f"{configured},{key}" if configured else key
        proxy.env["INTERCEPT_BACKEND_API_KEY"] = key

    async def _start(self, child: Child) -> None:
        child.process = await asyncio.create_subprocess_exec(*child.args, env=child.env)
        self.on_event(f"started {child.name} (pid {child.process.pid})")

    async def _watch(self, child: Child, stop: asyncio.Event) -> None:
        delay = 1.0
        while not stop.is_set():
            assert child.process is not None
            wait = asyncio.ensure_future(child.process.wait())
            halt = asyncio.ensure_future(stop.wait())
            await asyncio.wait({wait, halt}, return_when=asyncio.FIRST_COMPLETED)
            halt.cancel()
            if stop.is_set():
                wait.cancel()
                return
            code = child.process.returncode
            now = time.monotonic()
            child.restarts = [t for t in child.restarts if now - t < self.restart_window]
            if len(child.restarts) >= self.max_restarts:
                child.given_up = True
                self.on_event(f"{child.name} keeps failing (exit {code}); left down")
                return
            child.restarts.append(now)
            self.on_event(f"{child.name} exited with {code}; restarting in {delay:.0f} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return
            delay = min(delay * 2, 30.0)
            await self._start(child)

    async def _terminate(self, child: Child) -> None:
        proc = child.process
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), self.grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        self.on_event(f"stopped {child.name}")

    async def run(self, stop: asyncio.Event) -> None:
        url, embedded = await resolve_nats(self.settings)
        self.nats_url = url
        self.on_event(f"NATS at {url}" + (" (embedded)" if embedded else ""))
        try:
            self.children = self._children(url)
            for child in self.children:
                await self._start(child)
            await asyncio.gather(*(self._watch(c, stop) for c in self.children))
            await stop.wait()
        finally:
            await asyncio.gather(*(self._terminate(c) for c in self.children))
            if embedded is not None:
                await asyncio.to_thread(embedded.stop)
                self.on_event("stopped embedded nats-server")
