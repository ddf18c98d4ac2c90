"""Rows of `tentalis status`'s services table: the gateway services show their port,
requests and what their publisher holds; the model server its adapters."""

from __future__ import annotations

from tentalis.cli.health_view import COLUMNS, service_row

NOW = 1000.0


def row(v: dict) -> dict[str, str]:
    return dict(zip(COLUMNS, service_row(v["service"], v, NOW), strict=True))


def test_proxy_row_shows_requests_port_and_publisher_counts() -> None:
    r = row({"service": "proxy-8090", "kind": "proxy", "status": "running", "last_beat": 998,
             "port": 8090, "requests": 12, "errors": 1, "buffered": 2, "spooled": 7,
             "pid": 42})
    assert r["processed"] == "12" and r["status"] == "running" and r["last beat"] == "2 s ago"
    assert r["detail"] == "port 8090 · 1 errors · 2 buffered, 7 spooled"


def test_model_server_row_lists_adapters_and_a_silent_one_is_stale() -> None:
    r = row({"service": "model-server-8092", "kind": "model-server", "status": "running",
             "last_beat": NOW - 60, "port": 8092, "requests": 0, "errors": 0,
             "adapters": ["policy", "policy@3"]})
    assert r["status"] == "stale"
    assert r["detail"] == "port 8092 · adapters: policy, policy@3"


def test_worker_row_keeps_its_adapter() -> None:
    r = row({"service": "worker-01", "kind": "worker", "status": "running", "last_beat": NOW,
             "processed": 5, "adapter": None, "adapter_version": None})
    assert (r["processed"], r["detail"]) == ("5", "base")
    r = row({"service": "worker-01", "kind": "worker", "status": "running", "last_beat": NOW,
             "processed": 5, "adapter": "policy", "adapter_version": 3})
    assert r["detail"] == "policy v3"


def test_worker_row_lists_its_environments() -> None:
    r = row({"service": "worker-01", "kind": "worker", "status": "running", "last_beat": NOW,
             "processed": 0, "adapter": None, "environments": ["math", "myenv"]})
    assert r["detail"] == "base · envs: math, myenv"
