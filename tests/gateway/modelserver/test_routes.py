"""The model server's router mounted alone, its state given through the dependency
override, over an engine stub."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tentalis.gateway.modelserver import ModelServerState, model_server_state, router
from tentalis.gateway.security import SecurityConfig
from tentalis.inference.adapters import AdapterStore
from tentalis.inference.base import ChatRequest, Completion


class _Engine:
    model_name = "stub"

    def __init__(self) -> None:
        self.seen: list[ChatRequest] = []

    async def chat(self, requests: Sequence[ChatRequest]) -> list[Completion]:
        self.seen.extend(requests)
        return [Completion(text="hello", completion_token_ids=[7, 8], prompt_token_ids=[1],
                           logprobs=[-0.5, -0.25]) for _ in requests]


def test_chat_and_models_routes_alone(tmp_path: Path) -> None:
    engine = _Engine()
    state = ModelServerState(engine, AdapterStore(tmp_path / "adapters"),  # type: ignore[arg-type]
                             SecurityConfig(max_tokens=64), default_max_tokens=16)
    app = FastAPI()
    app.include_router(router)
    app.dependency_overrides[model_server_state] = lambda: state
    with TestClient(app) as client:
        assert [m["id"] for m in client.get("/v1/models").json()["data"]] == ["base"]
        done = client.post("/v1/chat/completions", json={
            "model": "base", "messages": [{"role": "user", "content": "hi"}]})
        assert done.status_code == 200
        assert done.json()["choices"][0]["message"]["content"] == "hello"
        over = client.post("/v1/chat/completions", json={
            "model": "base", "max_tokens": 65, "messages": [{"role": "user", "content": "hi"}]})
        assert over.status_code == 400
    [request] = engine.seen
    assert (request.max_tokens, request.adapter) == (16, None)


def test_an_engine_that_cannot_stream_is_streamed_whole(tmp_path: Path) -> None:
    engine = _Engine()
    state = ModelServerState(engine, AdapterStore(tmp_path / "adapters"),  # type: ignore[arg-type]
                             SecurityConfig(max_tokens=64), default_max_tokens=16)
    app = FastAPI()
    app.include_router(router)
    app.dependency_overrides[model_server_state] = lambda: state
    with TestClient(app) as client:
        resp = client.post("/v1/chat/completions", json={
            "model": "base", "stream": True, "logprobs": True, "return_token_ids": True,
            "messages": [{"role": "user", "content": "hi"}]})
        assert client.get("/v1/models/base").json()["id"] == "base"
        assert client.get("/v1/models/nope").status_code == 404
    assert resp.status_code == 200
    chunks = [json.loads(line[6:]) for line in resp.text.splitlines()
              if line.startswith("data: {")]
    assert chunks[0]["prompt_token_ids"] == [1]
    deltas = [c["choices"][0] for c in chunks if c["choices"]]
    assert "".join(d["delta"].get("content") or "" for d in deltas) == "hello"
    assert [t for d in deltas for t in d.get("token_ids", [])] == [7, 8]
    assert [e["logprob"] for d in deltas if d["logprobs"] for e in d["logprobs"]["content"]] \
        == [-0.5, -0.25]
    assert deltas[-1]["finish_reason"] == "stop" and resp.text.endswith("data: [DONE]\n\n")
