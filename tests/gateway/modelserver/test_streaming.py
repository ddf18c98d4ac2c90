"""True streaming, top logprobs and ``GET /v1/models/{id}`` on a real model server (tiny
model), through the official ``openai`` client."""

from __future__ import annotations

import json
import threading
import time

import httpx
import openai
import pytest

from tentalis.inference import ChatRequest, StreamingInference
from tentalis.inference.openai import OpenAIInference

HELLO = [{"role": "user", "content": "Say hello"}]
LONG = [{"role": "user", "content": "def add(a, b):"}]


@pytest.fixture
def client(model_server, api_key: str) -> openai.OpenAI:  # type: ignore[no-untyped-def]
    return openai.OpenAI(base_url=model_server.url + "/v1", api_key=api_key, max_retries=0)


def test_the_first_chunk_arrives_before_the_last_decode_step(client, tiny_llm) -> None:  # type: ignore[no-untyped-def]
    first_chunk = threading.Event()
    steps: list[float] = []

    def hook(rows: int) -> None:
        steps.append(time.monotonic())
        if len(steps) == 2:  # a streaming server has sent the first token by now
            first_chunk.wait(10)

    tiny_llm.step_hook = hook
    arrivals: list[float] = []
    for _chunk in client.chat.completions.create(model="base", messages=LONG, max_tokens=16,
                                                 temperature=0, stream=True):
        arrivals.append(time.monotonic())
        first_chunk.set()
    assert len(steps) >= 3 and len(arrivals) >= 4
    assert arrivals[0] < steps[-1]
    assert first_chunk.is_set()


def test_streamed_and_whole_answers_are_the_same(client: openai.OpenAI) -> None:
    kw = dict(model="base", messages=LONG, max_tokens=24, temperature=1.0, seed=5, n=2,
              logprobs=True, top_logprobs=3, extra_body={"return_token_ids": True})
    whole = client.chat.completions.create(**kw)  # type: ignore[call-overload]
    chunks = list(client.chat.completions.create(  # type: ignore[call-overload]
        **kw, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].model_extra["prompt_token_ids"] == whole.model_extra["prompt_token_ids"]
    for choice in whole.choices:
        mine = [c.choices[0] for c in chunks if c.choices and c.choices[0].index == choice.index]
        assert "".join(c.delta.content or "" for c in mine) == choice.message.content
        assert [t for c in mine for t in c.model_extra.get("token_ids") or []] == \
            choice.model_extra["token_ids"]
        streamed = [e for c in mine if c.logprobs for e in c.logprobs.content]
        assert [e.model_dump() for e in streamed] == \
            [e.model_dump() for e in choice.logprobs.content]
        assert mine[-1].finish_reason == choice.finish_reason
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert whole.choices[0].message.content != whole.choices[1].message.content


def test_top_logprobs_shape_and_values(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="base", messages=HELLO, max_tokens=8,
                                          temperature=0, logprobs=True, top_logprobs=4)
    content = resp.choices[0].logprobs.content
    assert content
    for entry in content:
        top = entry.top_logprobs
        assert len(top) == 4
        assert (top[0].token, top[0].logprob) == (entry.token, entry.logprob)  # greedy
        assert [t.logprob for t in top] == sorted((t.logprob for t in top), reverse=True)
        assert all(t.bytes == list(t.token.encode()) for t in top)
    plain = client.chat.completions.create(model="base", messages=HELLO, max_tokens=4,
                                           temperature=0, logprobs=True)
    assert all(e.top_logprobs == [] for e in plain.choices[0].logprobs.content)


@pytest.mark.parametrize(("kw", "fragment"), [
    ({"logprobs": True, "top_logprobs": 21}, "top_logprobs=21 is over the maximum of 20"),
    ({"top_logprobs": 2}, "top_logprobs needs logprobs=true"),
])
def test_bad_top_logprobs_are_400(client: openai.OpenAI, kw: dict, fragment: str) -> None:
    with pytest.raises(openai.BadRequestError, match=fragment):
        client.chat.completions.create(model="base", messages=HELLO, max_tokens=2, **kw)
    with pytest.raises(openai.BadRequestError, match=fragment):
        client.chat.completions.create(model="base", messages=HELLO, max_tokens=2,
                                       stream=True, **kw)


def test_legacy_completions_logprobs_n(client: openai.OpenAI) -> None:
    resp = client.completions.create(model="base", prompt="1 + 1 =", max_tokens=5,
                                     temperature=0, logprobs=3)
    lp = resp.choices[0].logprobs
    assert len(lp.top_logprobs) == len(lp.tokens) == len(lp.token_logprobs) > 0
    for token, chosen, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs, strict=True):
        assert len(top) <= 3 and top[token] == chosen
    chunks = list(client.completions.create(model="base", prompt="1 + 1 =", max_tokens=5,
                                            temperature=0, logprobs=3, stream=True))
    streamed = [c.choices[0].logprobs for c in chunks if c.choices and c.choices[0].logprobs]
    assert [t for s in streamed for t in s.top_logprobs] == lp.top_logprobs
    offsets = [o for s in streamed for o in s.text_offset]
    assert len(offsets) == len(lp.text_offset) and offsets == sorted(offsets)
    assert "".join(c.choices[0].text for c in chunks) == resp.choices[0].text
    with pytest.raises(openai.BadRequestError, match="logprobs=21"):
        client.completions.create(model="base", prompt="x", max_tokens=2, logprobs=21)


def test_models_retrieve(client: openai.OpenAI, model_server, api_key: str) -> None:  # type: ignore[no-untyped-def]
    base = client.models.retrieve("base")
    assert base.id == "base" and base.object == "model"
    assert client.models.retrieve("tiny").id == "tiny"  # the base model's own name
    with httpx.Client(base_url=model_server.url,
                      headers={"Authorization": f"Bearer {api_key}"}) as admin:
        assert admin.post("/v1/load_lora_adapter",
                          json={"lora_name": "policy", "lora_path": "policy@1"}).is_success
    card = client.models.retrieve("policy")
    assert card.id == "policy" and card.model_extra["parent"] == "tiny"
    assert client.models.retrieve("policy@1").id == "policy@1"
    with pytest.raises(openai.NotFoundError) as err:
        client.models.retrieve("nope")
    body = err.value.response.json()
    assert body["error"]["type"] == "not_found_error" and "not served" in body["error"]["message"]


def test_a_client_that_disconnects_frees_its_row(model_server, api_key: str, tiny_llm) -> None:  # type: ignore[no-untyped-def]
    gone = threading.Event()
    steps: list[int] = []

    def hook(rows: int) -> None:
        steps.append(rows)
        if len(steps) == 2:
            gone.wait(10)  # hold the batch until the client has hung up
        elif gone.is_set():
            time.sleep(0.005)  # leave the server time to notice, as a slower model would

    tiny_llm.step_hook = hook
    body = {"model": "base", "messages": LONG, "max_tokens": 1500, "temperature": 0,
            "stream": True}
    with httpx.Client(base_url=model_server.url, headers={"Authorization": f"Bearer {api_key}"},
                      timeout=10) as http:
        with http.stream("POST", "/v1/chat/completions", json=body) as resp:
            assert resp.status_code == 200
            next(resp.iter_lines())
        gone.set()
        deadline = time.monotonic() + 10
        while tiny_llm.cancelled_rows == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert tiny_llm.cancelled_rows == 1 and steps[-1] == 0
    assert len(steps) < 200  # not the 1500 tokens it asked for


async def test_openai_inference_streams_from_a_remote_server(model_server, api_key: str) -> None:  # type: ignore[no-untyped-def]
    remote = OpenAIInference(model_server.url + "/v1", api_key, model="tiny", token_ids=True)
    req = ChatRequest(LONG, max_tokens=12, temperature=0)
    try:
        deltas = [d async for d in remote.stream([req])]
        (whole,) = await remote.chat([req])
    finally:
        await remote.close()
    assert isinstance(remote, StreamingInference) and len(deltas) > 2
    done = deltas[-1].completion
    assert done is not None and done.prompt_token_ids == whole.prompt_token_ids
    assert done.text == whole.text == "".join(d.text or "" for d in deltas)
    assert done.completion_token_ids == whole.completion_token_ids == \
        [t for d in deltas for t in d.token_ids]
    assert done.logprobs == whole.logprobs


def test_structured_output_streams_token_by_token(client: openai.OpenAI) -> None:
    kw = dict(model="base", messages=HELLO, max_tokens=48, temperature=0,
              response_format={"type": "json_object"})
    whole = client.chat.completions.create(**kw)  # type: ignore[call-overload]
    chunks = list(client.chat.completions.create(**kw, stream=True))  # type: ignore[call-overload]
    pieces = [c.choices[0].delta.content for c in chunks
              if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == whole.choices[0].message.content
    assert len(pieces) > 2
    if whole.choices[0].finish_reason == "stop":  # a finished object parses
        assert isinstance(json.loads("".join(pieces)), dict)
