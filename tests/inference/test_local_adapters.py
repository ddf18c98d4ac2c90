"""LoRA on LocalInference: mixed-adapter batches, hot-swap under load, unload, errors."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from tentalis.errors import AdapterError
from tentalis.inference import ChatRequest
from tentalis.inference.local import LocalInference

PROMPT = [{"role": "user", "content": "What is 2 + 3? Think step by step."}]


def req(adapter: str | None, max_tokens: int = 12) -> ChatRequest:
    return ChatRequest(PROMPT, max_tokens=max_tokens, temperature=0.0, adapter=adapter)


async def ids_of(llm: LocalInference, adapter: str | None) -> list[int]:
    (c,) = await llm.chat([req(adapter)])
    return c.completion_token_ids


async def test_mixed_batch_matches_each_adapter_alone(
    llm: LocalInference, lora_dirs: dict[str, Path]
) -> None:
    await llm.load_adapter("A", str(lora_dirs["a1"]))
    await llm.load_adapter("B", str(lora_dirs["b"]))
    assert llm.adapters() == ["A", "B"]

    names = [None, "A", "B", "base", "B", "A"]
    mixed = await llm.chat([req(n) for n in names])
    alone = {n: await ids_of(llm, n) for n in (None, "A", "B")}

    assert len({tuple(v) for v in alone.values()}) == 3  # base, A, B all differ
    for name, c in zip(names, mixed, strict=True):
        key = None if name == "base" else name
        assert c.completion_token_ids == alone[key]
        assert c.adapter == key


async def test_base_output_is_unchanged_by_loading_and_unloading(
    llm: LocalInference, lora_dirs: dict[str, Path]
) -> None:
    before = await ids_of(llm, None)
    await llm.load_adapter("A", str(lora_dirs["a1"]))
    assert await ids_of(llm, None) == before
    await llm.unload_adapter("A")
    assert llm.adapters() == []
    assert await ids_of(llm, None) == before  # the peft wrapper is gone again
    with pytest.raises(AdapterError, match="unknown adapter"):
        await llm.chat([req("A")])
    with pytest.raises(AdapterError):
        await llm.unload_adapter("A")


async def test_reload_replaces_the_adapter(llm: LocalInference, lora_dirs) -> None:
    await llm.load_adapter("A", str(lora_dirs["a1"]))
    v1 = await ids_of(llm, "A")
    await llm.load_adapter("A", str(lora_dirs["a2"]))
    v2 = await ids_of(llm, "A")
    await llm.load_adapter("A", str(lora_dirs["a1"]))
    assert v1 != v2 and await ids_of(llm, "A") == v1
    assert llm.adapters() == ["A"]
    assert len(llm.model.peft_config) == 1  # old versions are deleted, not piled up

    # a different LoRA shape cannot be copied in place: loaded anew, then repointed
    await llm.load_adapter("R8", str(lora_dirs["r8"]))
    r8 = await ids_of(llm, "R8")
    await llm.load_adapter("A", str(lora_dirs["r8"]))
    assert await ids_of(llm, "A") == r8
    await llm.load_adapter("A", str(lora_dirs["a2"]))
    assert await ids_of(llm, "A") == v2
    assert sorted(llm.model.peft_config) == sorted(llm._adapters.values())


async def test_invalid_adapter_names_and_paths(llm: LocalInference, tmp_path: Path) -> None:
    for bad in ("", "base", "../x", "/abs", "a b"):
        with pytest.raises(AdapterError):
            await llm.load_adapter(bad, str(tmp_path))
    with pytest.raises(AdapterError, match=r"adapter_config\.json"):
        await llm.load_adapter("A", str(tmp_path))


async def test_hot_swap_under_load_drops_nothing(llm: LocalInference, lora_dirs) -> None:
    await llm.load_adapter("A", str(lora_dirs["a1"]))
    expect_v1 = await ids_of(llm, "A")
    await llm.load_adapter("A", str(lora_dirs["a2"]))
    expect_v2 = await ids_of(llm, "A")
    expect_base = await ids_of(llm, None)
    assert expect_v1 != expect_v2

    stop = asyncio.Event()
    seen: list[tuple[str | None, list[int]]] = []

    async def client(i: int) -> None:
        adapter = "A" if i % 3 else None
        while not stop.is_set():
            (c,) = await llm.chat([req(adapter)])
            seen.append((adapter, c.completion_token_ids))

    async def swapper() -> None:
        for k in range(12):
            await llm.load_adapter("A", str(lora_dirs["a1" if k % 2 else "a2"]))
            await asyncio.sleep(0.01)
        stop.set()

    clients = [asyncio.create_task(client(i)) for i in range(6)]
    await swapper()
    await asyncio.gather(*clients)  # any failed request raises here

    assert len(seen) > 12
    for adapter, ids in seen:
        assert ids in ((expect_v1, expect_v2) if adapter else (expect_base,))
    served = {tuple(ids) for a, ids in seen if a}
    assert served == {tuple(expect_v1), tuple(expect_v2)}  # both versions served under load
    assert await ids_of(llm, "A") == expect_v1  # the last swap loaded a1
    assert len(llm.model.peft_config) == 1


async def test_adapter_unloaded_while_queued_fails_only_its_request(
    llm: LocalInference, lora_dirs
) -> None:
    await llm.load_adapter("A", str(lora_dirs["a1"]))
    release = threading.Event()
    blocker = asyncio.create_task(llm.run_in_worker(lambda: release.wait(10)))
    await asyncio.sleep(0.05)  # the worker is now blocked
    unload = asyncio.create_task(llm.unload_adapter("A"))
    await asyncio.sleep(0.01)
    doomed = asyncio.create_task(llm.chat([req("A")]))  # "A" still loaded at submit time
    fine = asyncio.create_task(llm.chat([req(None)]))
    await asyncio.sleep(0.01)
    release.set()
    await blocker
    await unload
    with pytest.raises(AdapterError, match="unknown adapter"):
        await doomed
    (c,) = await fine
    assert c.completion_token_ids


async def test_unknown_adapter_fails_fast_without_touching_others(llm: LocalInference) -> None:
    good = asyncio.create_task(llm.chat([req(None)]))
    with pytest.raises(AdapterError, match="unknown adapter 'nope'"):
        await llm.chat([req(None), req("nope")])
    assert (await good)[0].completion_token_ids


@pytest.mark.filterwarnings("ignore::UserWarning:peft.*")  # peft: "multiple adapters" notes
async def test_a_trainer_wrapping_the_shared_model_does_not_leak_into_base(
    llm: LocalInference, lora_dirs
) -> None:
    from peft import LoraConfig, get_peft_model

    before = await ids_of(llm, None)
    trainer_model = await llm.run_in_worker(
        lambda: get_peft_model(
            llm.base_model, LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False)
        )
    )
    assert await ids_of(llm, None) == before  # its active adapter is not applied to base rows
    await llm.load_adapter("A", str(lora_dirs["a1"]))
    await llm.load_adapter("A", str(lora_dirs["a2"]))
    await llm.unload_adapter("A")
    assert await ids_of(llm, None) == before
    assert "default" in trainer_model.peft_config  # ours came and went; theirs stayed
    assert any("lora_A.default" in n for n, _ in trainer_model.named_parameters())


async def test_an_adapter_for_another_model_is_refused_cleanly(
    llm: LocalInference, lora_dirs, tmp_path: Path
) -> None:
    import json
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(lora_dirs["a1"], bad)
    config = json.loads((bad / "adapter_config.json").read_text())
    config["target_modules"] = ["no_such_proj"]
    (bad / "adapter_config.json").write_text(json.dumps(config))
    await llm.load_adapter("A", str(lora_dirs["a1"]))
    expected = await ids_of(llm, "A")
    with pytest.raises(AdapterError, match="cannot load adapter 'B'"):
        await llm.load_adapter("B", str(bad))
    assert llm.adapters() == ["A"] and await ids_of(llm, "A") == expected
    assert len(llm.model.peft_config) == 1
