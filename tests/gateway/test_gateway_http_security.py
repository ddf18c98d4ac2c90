"""``secure`` on the proxy and the bridge: the auth matrix over every route, 413, SSRF
refusals, and redaction (secrets seeded into prompts, headers and URLs appear in no log,
stored event, spool file or error)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tentalis.bus.memory import MemoryBus
from tentalis.gateway.bridge import create_bridge_app
from tentalis.gateway.proxy import create_proxy_app
from tentalis.gateway.proxy.config import ProxyConfig
from tentalis.gateway.publisher import EventPublisher
from tentalis.gateway.security import SecurityConfig, install_log_redaction
from tentalis.gateway.spool import Spool

CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}
PROXY_ROUTES = [("GET", "/v1/models", None), ("POST", "/v1/chat/completions", CHAT),
                ("POST", "/v1/completions", {"model": "tiny", "prompt": "hi"})]
BRIDGE_ROUTES = [("POST", "/v1/tasks", {"prompt": "p"}), ("POST", "/v1/requests", {"text": "t"}),
                 ("GET", "/v1/tasks/x", None), ("POST", "/v1/tasks/x/feedback", {}),
                 ("GET", "/v1/sessions/x", None), ("POST", "/v1/sessions/x/feedback", {}),
                 ("GET", "/v1/status", None), ("GET", "/v1/events?max_events=1", None),
                 ("GET", "/openapi.json", None), ("GET", "/docs", None)]


@contextlib.asynccontextmanager
async def servers(serve: Any, backend_app: Any, tmp_path: Path, store: Any, gw: Any,
                  log_level: str = "warning", **limits: Any) -> AsyncIterator[dict[str, str]]:
    security = SecurityConfig.with_keys(gw.KEY, rate_limit_per_minute=0, **limits)
    bus = MemoryBus()
    await bus.connect()
    async with serve(backend_app) as backend, gw.recording(bus, store):
        config = ProxyConfig(backend_url=backend, backend_api_key="sk-backend-secret-0123456789ab",
                             spool_path=tmp_path / "proxy.jsonl")
        proxy = create_proxy_app(config, EventPublisher(bus, Spool(config.spool_path)), security)
        bridge = create_bridge_app(bus, EventPublisher(bus, Spool(tmp_path / "bridge.jsonl")),
                                   store, security)
        async with serve(proxy, log_level) as p, serve(bridge, log_level) as b:
            yield {"proxy": p, "bridge": b}


@pytest.mark.parametrize("which", ["proxy", "bridge"])
async def test_auth_matrix_over_every_route(serve, backend_app, tmp_path, store, gw,
                                            which) -> None:
    routes = PROXY_ROUTES if which == "proxy" else BRIDGE_ROUTES
    async with servers(serve, backend_app, tmp_path, store, gw) as urls, \
            httpx.AsyncClient(base_url=urls[which], timeout=10) as http:
        assert (await http.get("/health")).status_code == 200  # the one public route
        for method, path, body in routes:
            for headers in ({}, {"Authorization": "Bearer tnt-wrong-key-000000000000000000"},
                            {"X-API-Key": "nope"}):
                r = await http.request(method, path, json=body, headers=headers)
                assert r.status_code == 401, (method, path, headers)
                assert r.json()["error"]["type"] == "authentication_error"
            async with http.stream(method, path, json=body,
                                   headers={"Authorization": f"Bearer {gw.KEY}"}) as r:
                assert r.status_code not in (401, 403) and r.status_code < 500, path


@pytest.mark.parametrize("which", ["proxy", "bridge"])
async def test_oversized_body_is_413_and_the_server_keeps_serving(
    serve, backend_app, tmp_path, store, gw, which
) -> None:
    path = "/v1/chat/completions" if which == "proxy" else "/v1/tasks"
    async with servers(serve, backend_app, tmp_path, store, gw,
                       max_body_bytes=2048) as urls, httpx.AsyncClient(
            base_url=urls[which], headers={"Authorization": f"Bearer {gw.KEY}"}) as http:
        big = {"model": "tiny", "prompt": "x" * 5000,
               "messages": [{"role": "user", "content": "x" * 5000}]}
        r = await http.post(path, json=big)
        assert r.status_code == 413 and "limit" in r.json()["error"]["message"]

        async def chunked():  # no Content-Length: counted while read
            for _ in range(10):
                yield b"x" * 1000

        r = await http.post(path, content=chunked(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert (await http.get("/health")).status_code == 200


async def test_upstream_cannot_be_chosen_by_the_request(serve, backend_app, tmp_path, store,
                                                        gw) -> None:
    async with servers(serve, backend_app, tmp_path, store, gw) as urls, httpx.AsyncClient(
            base_url=urls["proxy"], headers={"Authorization": f"Bearer {gw.KEY}"}) as http:
        for field in ("api_base", "base_url", "upstream_url"):
            r = await http.post("/v1/chat/completions",
                                json={**CHAT, field: "http://169.254.169.254/latest"})
            assert r.status_code == 400 and "configuration" in r.json()["error"]["message"]
        # redirect headers and absolute-form targets are ignored: the configured backend answers
        r = await http.post("/v1/chat/completions", json=CHAT, headers={
            "X-Forwarded-Host": "169.254.169.254", "Host": "evil.example",
            "X-Upstream-URL": "http://127.0.0.1:1/"})
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "echo: hi"
        for path in ("/v1/../admin", "/http://169.254.169.254/v1/models", "/v1/models/../../x"):
            assert (await http.get(path)).status_code in (404, 405)
    seen = backend_app.state.seen
    assert all(s["headers"]["authorization"] == "Bearer sk-backend-secret-0123456789ab"
               for s in seen)  # the client's key never reaches the backend
    assert not any("api_base" in s["body"] for s in seen)


async def test_secrets_appear_in_no_log_event_spool_or_error(serve, backend_app, tmp_path,
                                                              store, gw, caplog) -> None:
    prompt_key = "sk-proj-PROMPTSECRET0123456789abcdef"
    url_secret = "URLSECRETvalue0123456789"
    header_secret = "HEADERSECRETvalue0123456789"
    secrets = [gw.KEY, prompt_key, url_secret, header_secret, "sk-backend-secret-0123456789ab"]
    caplog.set_level(logging.DEBUG)
    captured: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(self.format(record))

    handler = Capture()
    async with servers(serve, backend_app, tmp_path, store, gw, log_level="debug") as urls:
        install_log_redaction()
        for name in ("uvicorn.access", "uvicorn.error", "tentalis"):
            logging.getLogger(name).addHandler(handler)
        errors = []
        try:
            async with httpx.AsyncClient(base_url=urls["proxy"]) as http:
                auth = {"Authorization": f"Bearer {gw.KEY}", "X-Session-Id": "sec"}
                body = {"model": "tiny", "messages": [{"role": "user", "content":
                        f"my key is {prompt_key} and Authorization: Bearer {header_secret}"}]}
                r = await http.post(f"/v1/chat/completions?key={url_secret}", json=body,
                                    headers=auth)
                assert r.status_code == 200
                r = await http.post(f"/v1/chat/completions?api_key={url_secret}", json={
                    **body, "model": "fail-500"}, headers={**auth, "X-API-Key": header_secret})
                errors.append(r.text)
                r = await http.get(f"/v1/models?key={url_secret}",
                                   headers={"Authorization": f"Bearer {header_secret}"})
                errors.append(r.text)
                r = await http.post("/v1/chat/completions", json={"model": 1, "messages": [
                    {"role": "user", "content": prompt_key}]}, headers=auth)
                errors.append(r.text)
            async with httpx.AsyncClient(base_url=urls["bridge"]) as http:
                r = await http.post(f"/v1/tasks?token={url_secret}",
                                    json={"prompt": f"use {prompt_key}"},
                                    headers={"Authorization": f"Bearer {gw.KEY}"})
                assert r.status_code == 202
                errors.append((await http.get(f"/v1/status?key={url_secret}")).text)
            await gw.wait_for(lambda: store.counts()["session"] == 2
                              and store.counts()["task"] == 1)
        finally:
            for name in ("uvicorn.access", "uvicorn.error", "tentalis"):
                logging.getLogger(name).removeHandler(handler)
    stored = "\n".join(r[0] for r in store.read("SELECT payload FROM events"))
    spools = "".join(p.read_text() for p in tmp_path.glob("*.jsonl*"))
    logs = "\n".join(captured) + "\n" + gw.log_text(caplog)
    assert "/v1/chat/completions" in logs  # the access log was captured
    for haystack, what in ((stored, "store"), (spools, "spool"), (logs, "logs"),
                           ("\n".join(errors), "errors")):
        for secret in secrets:
            assert secret not in haystack, f"{secret[:8]}… found in {what}"
    assert "my key is ***" in stored  # the prompt is kept, the key masked
