"""The proxy's router mounted alone, its state given through the dependency override."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tentalis.gateway.proxy import ProxyConfig, ProxyState, proxy_state, router


class _Publisher:
    running = True
    healthy = True

    def __init__(self) -> None:
        self.events: list[Any] = []

    def submit(self, event: Any) -> None:
        self.events.append(event)


def test_chat_and_models_routes_alone(backend_app: FastAPI, tmp_path: Path) -> None:
    publisher = _Publisher()
    backend = httpx.AsyncClient(transport=httpx.ASGITransport(app=backend_app),
                                base_url="http://backend")
    config = ProxyConfig(backend_url="http://backend", spool_path=tmp_path / "spool.jsonl",
                         source="route-test")
    state = ProxyState(config, publisher, backend)  # type: ignore[arg-type]
    app = FastAPI()
    app.include_router(router)
    app.dependency_overrides[proxy_state] = lambda: state
    with TestClient(app) as client:
        assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["tiny"]
        done = client.post("/v1/chat/completions", headers={"X-Session-Id": "s-1"},
                           json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}]})
        assert done.status_code == 200
        assert done.json()["choices"][0]["message"]["content"] == "echo: hi"
    [turn] = publisher.events
    assert (turn.kind, turn.session_id, turn.source) == ("session", "s-1", "route-test")
    assert turn.completion == "echo: hi"
