"""Hot swap on a remote server: a worker with INFERENCE_BACKEND=openai follows
ModelUpdateEvents on tentalis's own model server (real uvicorn, tiny model)."""

from __future__ import annotations

import asyncio

import httpx

from tentalis.agents.worker import Worker, WorkerConfig
from tentalis.events import ModelUpdateEvent
from tentalis.inference.adapters import AdapterStore
from tentalis.inference.base import ChatRequest
from tentalis.inference.openai import OpenAIInference

HELLO = [{"role": "user", "content": "Say hello"}]


def update(store: AdapterStore, version: int) -> ModelUpdateEvent:
    v = store.get("policy", version)
    return ModelUpdateEvent(adapter_name="policy", version=version, sha256=v.sha256,
                            path=str(v.path), source="trainer")


async def greedy(client: OpenAIInference, adapter: str | None) -> list[int]:
    (c,) = await client.chat([ChatRequest(HELLO, max_tokens=6, temperature=0, adapter=adapter)])
    return c.completion_token_ids


async def served_models(url: str, key: str) -> set[str]:
    async with httpx.AsyncClient() as http:
        resp = await http.get(f"{url}/v1/models", headers={"X-API-Key": key})
    return {m["id"] for m in resp.json()["data"]}


async def test_worker_swaps_adapters_on_the_model_server_without_failures(
    model_server, api_key: str, adapter_store: AdapterStore, memory_bus  # type: ignore[no-untyped-def]
) -> None:
    client = OpenAIInference(model_server.url + "/v1", api_key, "tiny")
    worker = Worker(memory_bus, client, WorkerConfig(worker_id="w-remote"))
    try:
        base = await client.chat([ChatRequest(HELLO, max_tokens=6, temperature=0)])
        await worker.apply_update(update(adapter_store, 1))
        assert worker.adapter == "policy" and worker.adapter_version == 1
        (v1_alias,) = (await served_models(model_server.url, api_key)) - {"base", "policy@1"}
        v1 = await client.chat([ChatRequest(HELLO, max_tokens=6, temperature=0,
                                            adapter=worker.adapter, logprobs=True)])
        assert v1[0].text != base[0].text or v1[0].logprobs != base[0].logprobs

        # a stream of requests while v2 is published: none fails, the old one is unloaded
        async def keep_asking() -> list[str]:
            out = []
            for _ in range(6):
                (c,) = await client.chat([ChatRequest(HELLO, max_tokens=4, temperature=0,
                                                      adapter="policy")])
                out.append(c.text)
            return out

        asking = asyncio.ensure_future(keep_asking())
        await asyncio.sleep(0.05)
        await worker.apply_update(update(adapter_store, 2))
        answers = await asking
        assert len(answers) == 6 and worker.adapter_version == 2 and worker.rejected_updates == 0
        models = await served_models(model_server.url, api_key)
        assert v1_alias not in models and "policy@1" not in models and "policy@2" in models
        # the very next request is answered by v2: same tokens as asking for v2 by version
        after = await client.chat([ChatRequest(HELLO, max_tokens=6, temperature=0,
                                               adapter="policy", logprobs=True)])
        by_version = OpenAIInference(model_server.url + "/v1", api_key, "tiny")
        pinned = await by_version.chat([ChatRequest(HELLO, max_tokens=6, temperature=0,
                                                    adapter="policy@2", logprobs=True)])
        await by_version.close()
        assert after[0].text == pinned[0].text and after[0].logprobs == pinned[0].logprobs
        assert after[0].logprobs != v1[0].logprobs
    finally:
        await client.close()


async def test_update_with_a_path_outside_the_store_is_refused(
    model_server, api_key: str, adapter_store: AdapterStore, memory_bus, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    import shutil

    client = OpenAIInference(model_server.url + "/v1", api_key, "tiny")
    worker = Worker(memory_bus, client, WorkerConfig(worker_id="w-remote"))
    copy = tmp_path / "elsewhere"
    shutil.copytree(adapter_store.get("policy", 1).path, copy)
    event = update(adapter_store, 1).model_copy(update={"path": str(copy)})
    await worker.apply_update(event)  # the checksum matches, but the server refuses the path
    assert worker.rejected_updates == 1 and worker.adapter_version is None
    assert await served_models(model_server.url, api_key) == {"base"}
    await client.close()
