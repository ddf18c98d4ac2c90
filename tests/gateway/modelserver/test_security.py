"""Security on every route: keys, the auth matrix, body limits, rate limits, redaction."""

from __future__ import annotations

import io
import logging
import os
import stat
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tentalis.config import load_settings
from tentalis.errors import ConfigError
from tentalis.gateway.modelserver import create_model_app
from tentalis.gateway.security import SecurityConfig, check_bind, install_log_redaction
from tentalis.gateway.security.keys import KeyRing, add_key, hash_key
from tentalis.gateway.security.redaction import redact
from tentalis.services.gateway import security_config

HELLO = {"model": "base", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def asgi(app: FastAPI, client: tuple[str, int] = ("127.0.0.1", 50000)) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=client),
                             base_url="http://test")


def routes(app: FastAPI) -> list[tuple[str, str]]:
    # from the schema: routes mounted from an APIRouter are not APIRoutes in ``app.routes``
    found = [(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops]
    found += [("GET", "/openapi.json"), ("GET", "/docs")]
    return sorted(found)


async def test_auth_matrix_over_every_route(model_app: FastAPI, api_key: str) -> None:
    seen = routes(model_app)
    assert ("POST", "/v1/load_lora_adapter") in seen and ("GET", "/health") in seen
    async with asgi(model_app) as http:
        for method, path in seen:
            body = HELLO if path == "/v1/chat/completions" else {}
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "nope"},
                            {"Authorization": api_key}):  # no "Bearer": refused
                r = await http.request(method, path, json=body, headers=headers)
                expected = 200 if path == "/health" else 401
                assert r.status_code == expected, (method, path, headers, r.status_code)
                assert "wrong" not in r.text and "nope" not in r.text
            for headers in ({"Authorization": f"Bearer {api_key}"}, {"X-API-Key": api_key}):
                r = await http.request(method, path, json=body, headers=headers)
                assert r.status_code != 401 and r.status_code < 500, (method, path, r.text)


async def test_without_keys_only_loopback_clients_and_binds(
    tiny_llm, adapter_store  # type: ignore[no-untyped-def]
) -> None:
    open_config = SecurityConfig()
    app = create_model_app(tiny_llm, adapter_store, open_config)
    async with asgi(app) as http:
        assert (await http.get("/v1/models")).status_code == 200
    async with asgi(app, client=("10.1.2.3", 4444)) as http:
        assert (await http.get("/v1/models")).status_code == 401
        assert (await http.get("/health")).status_code == 200
    check_bind("127.0.0.1", open_config)
    check_bind("::1", open_config)
    with pytest.raises(ConfigError, match="without API keys"):
        check_bind("0.0.0.0", open_config)
    check_bind("0.0.0.0", SecurityConfig.with_keys("tnt-k-0123456789abcdef"))


async def test_oversized_bodies_rejected_with_413(
    tiny_llm, adapter_store, api_key: str, server_thread  # type: ignore[no-untyped-def]
) -> None:
    app = create_model_app(tiny_llm, adapter_store,
                           SecurityConfig.with_keys(api_key, max_body_bytes=4096))
    big = {**HELLO, "messages": [{"role": "user", "content": "x" * 10_000}]}
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}

    def chunks():  # no Content-Length: chunked transfer encoding
        import json

        data = json.dumps(big).encode()
        for i in range(0, len(data), 1000):
            yield data[i:i + 1000]

    with server_thread(app) as server, httpx.Client(base_url=server.url) as http:
        r = http.post("/v1/chat/completions", json=big, headers=headers)
        assert r.status_code == 413 and "4096" in r.json()["error"]["message"]
        r = http.post("/v1/chat/completions", content=chunks(), headers=headers)
        assert r.status_code == 413
        assert http.post("/v1/chat/completions", json=HELLO, headers=headers).status_code == 200


async def test_rate_limit_per_key_429_with_retry_after(
    tiny_llm, adapter_store  # type: ignore[no-untyped-def]
) -> None:
    config = SecurityConfig.with_keys("tnt-key-a-0123456789abcdef", "tnt-key-b-0123456789abcdef",
                                      rate_limit_per_minute=3)
    app = create_model_app(tiny_llm, adapter_store, config)
    async with asgi(app) as http:
        a = {"X-API-Key": "tnt-key-a-0123456789abcdef"}
        codes = [(await http.get("/v1/models", headers=a)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = await http.get("/v1/models", headers=a)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        b = {"X-API-Key": "tnt-key-b-0123456789abcdef"}
        assert (await http.get("/v1/models", headers=b)).status_code == 200  # per key
        assert (await http.get("/health")).status_code == 200


def test_key_file_holds_only_hashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "keys"
    key = add_key(path, label="ci")
    key2 = add_key(path)
    text = path.read_text()
    assert key not in text and key2 not in text and "ci" in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    ring = KeyRing.load(path)
    assert len(ring.salts) == 1  # one salt per file: one HMAC per check
    assert ring.match(key) and ring.match(key2) and not ring.match(key + "x")
    monkeypatch.setenv("GATEWAY_API_KEYS", "tnt-env-key-0123456789abcd, tnt-env-2-0123456789ab")
    monkeypatch.setenv("GATEWAY_API_KEY_FILE", str(path))
    config = security_config(load_settings())
    assert len(config.key_ring) == 4 and config.key_ring.match("tnt-env-2-0123456789ab")
    assert "tnt-env" not in config.model_dump_json()
    assert hash_key("k", b"s") == hash_key("k", b"s") != hash_key("k", b"t")


def test_redact_patterns() -> None:
    text = ("Authorization: Bearer abc.DEF-123 | 'authorization': 'Basic Zm9vOmJhcg==' | "
            "GET /v1/x?key=s3cr3t&b=1&api_key=s3cr3t2 | X-API-Key: k3y-value | "
            '{"api_key": "s3cr3t3"} | sk-proj-0123456789abcdefghij | tnt-0123456789abcdefghijk')
    out = redact(text)
    for secret in ("abc.DEF-123", "Zm9vOmJhcg", "s3cr3t", "k3y-value", "sk-proj-0123",
                   "tnt-0123456789"):
        assert secret not in out, (secret, out)
    assert "b=1" in out and "GET /v1/x" in out


async def test_secrets_never_reach_logs_or_error_bodies(
    tiny_llm, adapter_store, api_key: str, server_thread  # type: ignore[no-untyped-def]
) -> None:
    custom = "my-own-plain-key-without-prefix-42"  # no known shape: found by its hash
    app = create_model_app(tiny_llm, adapter_store, SecurityConfig.with_keys(api_key, custom))
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    loggers = [logging.getLogger(n) for n in ("", "uvicorn.access", "uvicorn.error")]
    with server_thread(app, log_level="info") as server:
        for lg in loggers:
            lg.addHandler(handler)
        install_log_redaction()
        try:
            with httpx.Client(base_url=server.url) as http:
                h = {"Authorization": f"Bearer {custom}"}
                http.get(f"/v1/models?key={custom}&api_key={api_key}", headers=h)
                http.get(f"/health?token={api_key}")
                http.get("/v1/models", headers={"Authorization": "Bearer wrong-" + custom})
                prompt = {**HELLO, "messages": [
                    {"role": "user", "content": f"my key is {custom} and {api_key}"}]}
                r = http.post("/v1/chat/completions", json=prompt, headers=h)
                assert r.status_code == 200
                bad = {**prompt, "max_tokens": f"{custom}"}  # echoed by naive validators
                r = http.post("/v1/chat/completions", json=bad, headers=h)
                assert r.status_code == 422 and custom not in r.text and api_key not in r.text
                r = http.post(f"/v1/load_lora_adapter?key={custom}", headers=h,
                              json={"lora_name": "x", "lora_path": f"/{custom}/{api_key}"})
                assert r.status_code == 400 and custom not in r.text and api_key not in r.text
                logging.getLogger("tentalis.gateway").error("upstream said %s", custom)
        finally:
            for lg in loggers:
                lg.removeHandler(handler)
    logged = sink.getvalue()
    assert "GET /v1/models" in logged and "upstream said ***" in logged
    assert custom not in logged and api_key not in logged, logged
