"""One row of ``tentalis status``'s services table, from a service's health entry.

``processed`` is what the service counts as work: events for the loop services, answered
HTTP requests for the gateway ones (proxy, bridge, model server). ``detail`` gathers
what is particular to a kind: a worker's or trainer's adapter; a worker's environments; a
gateway's port and errors; the proxy's and bridge's buffered and spooled events; the model
server's adapters.
"""

from __future__ import annotations

from typing import Any

COLUMNS = ("service", "kind", "status", "last beat", "processed", "detail", "pid")
STALE_AFTER_SECONDS = 20.0


def service_row(key: str, v: dict[str, Any], now: float) -> list[str]:
    """The table cells for health entry ``v`` stored under ``key``."""
    age = now - float(v.get("last_beat", 0))
    state = v.get("status", "?")
    if state == "running" and age > STALE_AFTER_SECONDS:
        state = "stale"
    processed = v.get("processed", v.get("requests", ""))
    return [key, str(v.get("kind", "")), state, f"{age:.0f} s ago", str(processed),
            detail(v), str(v.get("pid", ""))]


def detail(v: dict[str, Any]) -> str:
    """The kind-specific fields of a health entry, as one short line."""
    parts: list[str] = []
    if v.get("kind") == "worker" or v.get("adapter"):  # a worker's, or a trainer's
        adapter = v.get("adapter") or "base"
        if v.get("adapter_version") is not None:
            adapter += f" v{v['adapter_version']}"
        parts.append(adapter)
    if v.get("environments"):  # a worker's: the queue groups it answers
        parts.append("envs: " + ", ".join(v["environments"]))
    if v.get("port") is not None:
        parts.append(f"port {v['port']}")
    if v.get("errors"):
        parts.append(f"{v['errors']} errors")
    if "buffered" in v or "spooled" in v:
        parts.append(f"{v.get('buffered', 0)} buffered, {v.get('spooled', 0)} spooled")
    if "adapters" in v:
        parts.append("adapters: " + (", ".join(v["adapters"]) or "none"))
    return " · ".join(parts)
