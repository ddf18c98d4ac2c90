"""OpenAIInference against a small real HTTP server speaking the vLLM dialect."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tentalis.errors import AdapterError, InferenceError
from tentalis.inference import ChatRequest, InferenceClient
from tentalis.inference.openai import OpenAIInference

API_KEY = "sk-test-secret-123"


class FakeVLLM:
    """Chat completions + runtime LoRA endpoints; records what it was sent."""

    def __init__(self) -> None:
        self.adapters: dict[str, str] = {}
        self.chat_bodies: list[dict[str, Any]] = []
        self.reject_logprobs = False
        self.lock = threading.Lock()

    def handle(self, path: str, body: dict[str, Any], auth: str) -> tuple[int, dict]:
        if auth != f"Bearer {API_KEY}":
            return 401, {"error": {"message": f"bad key {auth}"}}
        if path == "/v1/chat/completions":
            return self.chat(body)
        if path == "/v1/load_lora_adapter":
            name = body["lora_name"]
            if name in self.adapters and not body.get("load_inplace"):
                return 400, {"error": {"message": f"adapter {name} already loaded"}}
            self.adapters[name] = body["lora_path"]
            return 200, {}
        if path == "/v1/unload_lora_adapter":
            if self.adapters.pop(body["lora_name"], None) is None:
                return 404, {"error": {"message": "no such adapter"}}
            return 200, {}
        return 404, {"error": {"message": f"no route {path}"}}

    def chat(self, body: dict[str, Any]) -> tuple[int, dict]:
        with self.lock:
            self.chat_bodies.append(body)
        model = body["model"]
        if model != "base-model" and model not in self.adapters:
            return 404, {"error": {"message": f"The model `{model}` does not exist."}}
        if body.get("logprobs") and self.reject_logprobs:
            return 400, {"error": {"message": "logprobs is not supported"}}
        question = body["messages"][-1]["content"]
        words = [f"{model}:", *question.split()][: body["max_tokens"]]
        text = " ".join(words)
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "length" if len(words) == body["max_tokens"] else "stop",
        }
        if body.get("logprobs"):
            tokens = [f"token_id:{100 + i}" for i in range(len(words))]
            choice["logprobs"] = {
                "content": [
                    {"token": t, "logprob": -0.5 * (i + 1), "bytes": None, "top_logprobs": []}
                    for i, t in enumerate(tokens)
                ]
            }
        return 200, {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [choice],
        }


@pytest.fixture
def server() -> Iterator[tuple[FakeVLLM, str]]:
    fake = FakeVLLM()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
            status, payload = fake.handle(self.path, body, self.headers.get("Authorization", ""))
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield fake, f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def client(url: str, key: str = API_KEY, **kw: Any) -> OpenAIInference:
    return OpenAIInference(url, key, "base-model", max_retries=0, timeout=10, **kw)


def ask(question: str, adapter: str | None = None, **kw: Any) -> ChatRequest:
    return ChatRequest([{"role": "user", "content": question}], adapter=adapter, **kw)


async def test_chat_in_order_with_logprobs_and_token_ids(server) -> None:
    fake, url = server
    llm = client(url, token_ids=True)
    assert isinstance(llm, InferenceClient)
    out = await llm.chat([ask(f"question number {i}", max_tokens=50, seed=i) for i in range(5)])
    assert [c.text for c in out] == [f"base-model: question number {i}" for i in range(5)]
    c = out[0]
    assert c.logprobs == [-0.5, -1.0, -1.5, -2.0]
    assert c.completion_token_ids == [100, 101, 102, 103]
    assert c.finish_reason == "stop" and c.adapter is None and c.model == "base-model"
    body = fake.chat_bodies[0]
    assert body["logprobs"] is True and body["return_tokens_as_token_ids"] is True
    assert body["max_tokens"] == 50 and "seed" in body
    await llm.close()


async def test_length_finish_and_no_token_ids_by_default(server) -> None:
    _, url = server
    llm = client(url)
    (c,) = await llm.chat([ask("one two three four", max_tokens=2)])
    assert c.finish_reason == "length" and c.completion_token_ids == []
    assert c.logprobs is not None and len(c.logprobs) == 2
    await llm.close()


async def test_server_without_logprobs_is_asked_again_without(server) -> None:
    fake, url = server
    fake.reject_logprobs = True
    llm = client(url)
    (c,) = await llm.chat([ask("hello")])
    assert c.text == "base-model: hello" and c.logprobs is None
    await llm.chat([ask("again")])
    assert "logprobs" not in fake.chat_bodies[-1]  # remembered: not asked again
    await llm.close()


async def test_runtime_lora_load_select_replace_unload(server) -> None:
    fake, url = server
    llm = client(url)
    await llm.load_adapter("math", "/srv/adapters/math/v1")
    (v1,) = fake.adapters  # each version gets its own server-side name
    assert v1.startswith("math-") and fake.adapters[v1] == "/srv/adapters/math/v1"
    assert llm.adapters() == ["math"]
    (c,) = await llm.chat([ask("hi", adapter="math")])
    assert c.text == f"{v1}: hi" and c.adapter == "math"
    assert fake.chat_bodies[-1]["model"] == v1

    await llm.load_adapter("math", "/srv/adapters/math/v2")  # load new, switch, unload old
    (v2,) = fake.adapters
    assert v2 != v1 and fake.adapters[v2] == "/srv/adapters/math/v2"
    await llm.chat([ask("hi", adapter="math")])
    assert fake.chat_bodies[-1]["model"] == v2

    await llm.unload_adapter("math")
    assert fake.adapters == {} and llm.adapters() == []
    with pytest.raises(AdapterError, match="not loaded on the server"):
        await llm.chat([ask("hi", adapter="math")])
    with pytest.raises(AdapterError, match="not loaded through this client"):
        await llm.unload_adapter("math")
    with pytest.raises(AdapterError, match="invalid adapter name"):
        await llm.load_adapter("../etc", "/x")
    await llm.close()


async def test_http_errors_carry_status_but_never_the_key(server) -> None:
    _, url = server
    wrong = "sk-wrong-key-456"
    llm = client(url, key=wrong)
    with pytest.raises(InferenceError) as err:
        await llm.chat([ask("hi")])
    assert "401" in str(err.value) and wrong not in str(err.value)
    with pytest.raises(AdapterError) as err2:
        await llm.load_adapter("math", "/x")
    assert "401" in str(err2.value) and wrong not in str(err2.value)
    await llm.close()


async def test_unreachable_server_is_an_inference_error() -> None:
    llm = OpenAIInference("http://127.0.0.1:9/v1", None, "m", max_retries=0, timeout=2)
    with pytest.raises(InferenceError, match="cannot reach"):
        await llm.chat([ask("hi")])
    await llm.close()
