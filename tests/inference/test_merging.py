"""Merged serving: a batch on one adapter runs on W + ΔW and leaves the base untouched."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import torch

from tentalis.inference import ChatRequest
from tentalis.inference.local import LocalInference
from tentalis.inference.merging import MergedWeights

PROMPTS = ["What is 2 + 3?", "Name a colour.", "Count to four."]


def reqs(adapter: str | None) -> list[ChatRequest]:
    return [ChatRequest([{"role": "user", "content": p}], max_tokens=10, temperature=0.0,
                        adapter=adapter, logprobs=True) for p in PROMPTS]


def client(model_dir: Path, merge: bool) -> LocalInference:
    return LocalInference(model_dir, device="cpu", dtype="float32", max_batch=8,
                          merge_adapters=merge)


@pytest.fixture
async def pair(tiny_model_dir: Path) -> AsyncIterator[tuple[LocalInference, LocalInference]]:
    """The same model twice: merged serving on, and off (the routed reference)."""
    merged, routed = client(tiny_model_dir, True), client(tiny_model_dir, False)
    yield merged, routed
    await merged.close()
    await routed.close()


def base_weights(llm: LocalInference) -> dict[str, torch.Tensor]:
    return {n: p for n, p in llm.base_model.named_parameters() if "lora_" not in n}


async def test_merged_batches_answer_like_the_routed_path(
    pair: tuple[LocalInference, LocalInference], lora_dirs: dict[str, Path]
) -> None:
    merged, routed = pair
    for llm in (merged, routed):
        await llm.load_adapter("A", str(lora_dirs["a1"]))
    pristine = {n: (p, p.detach().clone()) for n, p in base_weights(merged).items()}
    a_merged, a_routed = await merged.chat(reqs("A")), await routed.chat(reqs("A"))
    assert merged._merged.adapter is not None  # the merged path did run
    assert routed._merged.adapter is None
    for m, r in zip(a_merged, a_routed, strict=True):
        assert m.completion_token_ids == r.completion_token_ids
        assert torch.allclose(torch.tensor(m.logprobs), torch.tensor(r.logprobs), atol=1e-4)
    # after the batch the model holds the very same base tensors, unchanged
    for name, p in base_weights(merged).items():
        original, copy = pristine[name]
        assert p.data_ptr() == original.data_ptr() and torch.equal(p, copy), name
    base = await merged.chat(reqs(None))
    assert [c.completion_token_ids for c in base] != [c.completion_token_ids for c in a_merged]
    assert [c.completion_token_ids for c in base] == [
        c.completion_token_ids for c in await routed.chat(reqs(None))]


async def test_a_hot_swapped_adapter_is_merged_afresh(
    pair: tuple[LocalInference, LocalInference], lora_dirs: dict[str, Path]
) -> None:
    merged, routed = pair
    await merged.load_adapter("A", str(lora_dirs["a1"]))
    first = await merged.chat(reqs("A"))
    for llm in (merged, routed):  # same shape: weights copied in place
        await llm.load_adapter("A", str(lora_dirs["a2"]))
    swapped, expected = await merged.chat(reqs("A")), await routed.chat(reqs("A"))
    assert [c.completion_token_ids for c in swapped] == [
        c.completion_token_ids for c in expected]
    assert [c.completion_token_ids for c in swapped] != [c.completion_token_ids for c in first]


async def test_mixed_batches_are_routed_not_merged(
    tiny_model_dir: Path, lora_dirs: dict[str, Path]
) -> None:
    llm = client(tiny_model_dir, True)
    try:
        await llm.load_adapter("A", str(lora_dirs["a1"]))
        await llm.load_adapter("B", str(lora_dirs["b"]))
        out = await llm.chat([*reqs("A")[:1], *reqs("B")[:1], *reqs(None)[:1]])
        assert [c.adapter for c in out] == ["A", "B", None]
        assert llm._merged.adapter is None  # nothing was merged for a mixed batch
    finally:
        await llm.close()


def test_dora_adapters_are_not_merged(tiny_model_dir: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    plain = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"]), adapter_name="p")
    assert MergedWeights.can_merge(plain, "p")
    plain.add_adapter("d", LoraConfig(r=2, target_modules=["q_proj"], use_dora=True))
    assert not MergedWeights.can_merge(plain, "d")
    assert not MergedWeights.can_merge(plain, "missing")
