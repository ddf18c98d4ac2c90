"""One service per process: what ``tentalis worker|scorer|manager|recorder`` run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from tentalis.bus.consumer import run_batch_consumer
from tentalis.config import Settings
from tentalis.inference.factory import create_inference
from tentalis.services.components import make_manager, make_recorder, make_scorer, make_worker
from tentalis.services.runtime import connected_bus, heartbeat, stop_on_signals

SERVICES = ("recorder", "scorer", "manager", "worker")


async def _with_heartbeat(
    bus: Any,
    service_id: str,
    kind: str,
    stats: Callable[[], dict[str, Any]],
    stop: asyncio.Event,
    body: Awaitable[Any],
) -> None:
    beat = asyncio.ensure_future(heartbeat(bus, service_id, kind, stats, stop))
    try:
        await body
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await beat


async def run_service(kind: str, settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run one service until SIGINT/SIGTERM (or ``stop``)."""
    stop = stop or asyncio.Event()
    stop_on_signals(stop)
    async with connected_bus(settings) as bus:
        if kind == "recorder":
            rec = make_recorder(settings)
            body = run_batch_consumer(bus, rec.spec, rec.handle_batch, stop=stop)
            await _with_heartbeat(bus, "recorder", kind, lambda: {"processed": rec.recorded},
                                  stop, body)
            rec.store.close()
        elif kind == "scorer":
            svc = make_scorer(bus, settings)
            body = run_batch_consumer(bus, svc.spec, svc.handle_batch, stop=stop)
            await _with_heartbeat(bus, svc.service_id, kind, lambda: {"processed": svc.scored},
                                  stop, body)
        elif kind == "manager":
            # the manager's own model: decomposes multi-part requests, writes LLM reviews
            inference = await asyncio.to_thread(create_inference, settings)
            mgr = make_manager(bus, settings, inference)
            unserve = await mgr.serve_requests()
            body = run_batch_consumer(bus, mgr.review_spec(), mgr.handle_scores, stop=stop)
            try:
                await _with_heartbeat(bus, settings.manager.manager_id, kind,
                                      lambda: {"processed": mgr.reviewed}, stop, body)
            finally:
                await unserve()
                await mgr.stop_tracking()
        elif kind == "worker":
            inference = await asyncio.to_thread(create_inference, settings)
            worker = make_worker(bus, inference, settings)
            stats = lambda: {"processed": worker.processed, "failed": worker.failed,  # noqa: E731
                             "adapter": worker.adapter,
                             "adapter_version": worker.adapter_version,
                             "environments": list(worker.config.environments)}
            try:
                await _with_heartbeat(bus, settings.worker.worker_id, kind, stats, stop,
                                      worker.run(stop))
            finally:
                await inference.close()
        else:
            raise ValueError(f"unknown service {kind!r}; expected one of {SERVICES}")
