"""The model server through the official ``openai`` client, on a real uvicorn server."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import openai
import pytest

from tentalis.inference.adapters import AdapterStore

HELLO = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def client(model_server, api_key: str) -> openai.OpenAI:  # type: ignore[no-untyped-def]
    return openai.OpenAI(base_url=model_server.url + "/v1", api_key=api_key, max_retries=0)


@pytest.fixture
def admin(model_server, api_key: str):  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=model_server.url,
                      headers={"Authorization": f"Bearer {api_key}"}) as http:
        yield http


def greedy(client: openai.OpenAI, model: str) -> list[int]:
    resp = client.chat.completions.create(model=model, messages=HELLO, max_tokens=6,
                                          temperature=0, extra_body={"return_token_ids": True})
    return resp.choices[0].model_extra["token_ids"]


def test_chat_non_streaming_with_logprobs_and_token_ids(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model="base", messages=HELLO, max_tokens=8, temperature=0, logprobs=True,
        extra_body={"return_token_ids": True},
    )
    choice = resp.choices[0]
    ids = choice.model_extra["token_ids"]
    assert resp.object == "chat.completion" and resp.model == "base"
    assert choice.finish_reason in ("stop", "length") and 1 <= len(ids) <= 8
    assert len(choice.logprobs.content) == len(ids)
    assert all(t.logprob <= 0 for t in choice.logprobs.content)
    assert resp.usage.completion_tokens == len(ids)
    assert resp.usage.prompt_tokens == len(resp.model_extra["prompt_token_ids"]) > 0


def test_chat_streaming_matches_non_streaming(client: openai.OpenAI) -> None:
    full = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=8,
                                          temperature=0)
    stream = client.chat.completions.create(
        model="tiny", messages=HELLO, max_tokens=8, temperature=0, stream=True,
        logprobs=True, stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == full.choices[0].finish_reason
    assert chunks[-1].usage.completion_tokens == full.usage.completion_tokens


def test_text_completions_and_n(client: openai.OpenAI) -> None:
    resp = client.completions.create(model="base", prompt="1 + 1 =", max_tokens=5, n=2,
                                     temperature=1.0, seed=3, logprobs=0)
    assert [c.index for c in resp.choices] == [0, 1]
    assert len(resp.choices[0].logprobs.token_logprobs) == len(resp.choices[0].logprobs.tokens)
    streamed = list(client.completions.create(model="base", prompt="1 + 1 =", max_tokens=5,
                                              temperature=0, stream=True))
    assert streamed[-1].choices[0].finish_reason in ("stop", "length")


def test_models_and_unknown_model(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["base"]
    with pytest.raises(openai.NotFoundError, match="not served"):
        client.chat.completions.create(model="nope", messages=HELLO, max_tokens=2)


def test_caps_refused_with_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="n=9"):
        client.chat.completions.create(model="base", messages=HELLO, n=9)
    with pytest.raises(openai.BadRequestError, match="max_tokens=5000"):
        client.chat.completions.create(model="base", messages=HELLO, max_tokens=5000)
    with pytest.raises(openai.BadRequestError, match="257 messages"):
        client.chat.completions.create(model="base", messages=HELLO * 257, max_tokens=2)
    with pytest.raises(openai.UnprocessableEntityError):  # schema: wrong role
        client.chat.completions.create(model="base", messages=[{"role": "x", "content": ""}])


def test_load_swap_unload_serves_the_new_adapter_at_once(
    client: openai.OpenAI, admin: httpx.Client
) -> None:
    base = greedy(client, "base")
    r = admin.post("/v1/load_lora_adapter", json={"lora_name": "policy", "lora_path": "policy@1"})
    assert r.status_code == 200, r.text
    v1 = greedy(client, "policy")
    assert v1 != base and greedy(client, "policy@1") == v1
    r = admin.post("/v1/load_lora_adapter", json={"lora_name": "policy", "lora_path": "policy@2"})
    assert r.status_code == 200, r.text
    v2 = greedy(client, "policy")  # right after the swap: the new version answers
    assert v2 not in (v1, base) and greedy(client, "policy@2") == v2
    assert {m.id for m in client.models.list()} == {"base", "policy", "policy@2"}
    with pytest.raises(openai.NotFoundError):  # v1 is no longer served
        greedy(client, "policy@1")
    assert admin.post("/v1/unload_lora_adapter", json={"lora_name": "policy"}).status_code == 200
    assert [m.id for m in client.models.list()] == ["base"]
    assert admin.post("/v1/unload_lora_adapter",
                      json={"lora_name": "policy"}).status_code == 404


def test_absolute_store_path_and_sha_check(
    admin: httpx.Client, adapter_store: AdapterStore
) -> None:
    v2 = adapter_store.get("policy", 2)
    ok = admin.post("/v1/load_lora_adapter", json={
        "lora_name": "p2", "lora_path": str(v2.path), "sha256": v2.sha256})
    assert ok.status_code == 200, ok.text
    bad = admin.post("/v1/load_lora_adapter", json={
        "lora_name": "p3", "lora_path": "policy/v2", "sha256": "0" * 64})
    assert bad.status_code == 400 and "sha256" in bad.json()["error"]["message"]


@pytest.mark.parametrize("path", [
    "../policy/v1", "policy/../../etc", "/etc/passwd", "/tmp", "policy@1/../x", "",
    "..", "policy/v1/../../..",
])
def test_paths_outside_the_store_refused(admin: httpx.Client, path: str) -> None:
    r = admin.post("/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": path})
    assert r.status_code in (400, 422), (path, r.status_code, r.text)


def test_symlinks_out_of_the_store_refused(
    admin: httpx.Client, adapter_store: AdapterStore, tmp_path: Path, gateway_loras: list[Path]
) -> None:
    outside = gateway_loras[0]
    (adapter_store.root / "policy" / "v9").symlink_to(outside, target_is_directory=True)
    os.symlink(outside.parent, adapter_store.root / "evil", target_is_directory=True)
    for path in ("policy@9", str(adapter_store.root / "policy" / "v9"), "evil@1",
                 str(adapter_store.root / "evil" / outside.name)):
        r = admin.post("/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": path})
        assert r.status_code in (400, 404), (path, r.status_code, r.text)
    assert admin.get("/v1/models").json()["data"][0]["id"] == "base"


def test_unknown_and_invalid_adapter_names(admin: httpx.Client) -> None:
    r = admin.post("/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": "ghost@1"})
    assert r.status_code == 404
    r = admin.post("/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": "policy@7"})
    assert r.status_code == 404
    r = admin.post("/v1/load_lora_adapter", json={"lora_name": "a b", "lora_path": "policy"})
    assert r.status_code == 400
    r = admin.post("/v1/load_lora_adapter", json={"lora_name": "base", "lora_path": "policy"})
    assert r.status_code == 400
