"""LocalInference on the tiny model: batching, decoding, logprobs, stop, concurrency."""

from __future__ import annotations

import asyncio

import pytest

from tentalis.errors import InferenceError
from tentalis.inference import ChatRequest, Completion, InferenceClient
from tentalis.inference.local import LocalInference

PROMPTS = [
    "What is 2 + 3?",
    "Name the capital of France, please.",
    "def add(a, b):",
    "Think step by step: 12 times 7 is what? Then check the result twice.",
    "hi",
]


def greedy(content: str, max_tokens: int = 12, **kw) -> ChatRequest:
    return ChatRequest(
        [{"role": "user", "content": content}], max_tokens=max_tokens, temperature=0.0, **kw
    )


def test_is_an_inference_client(llm: LocalInference) -> None:
    assert isinstance(llm, InferenceClient)
    assert llm.model_name == "tiny"


async def test_batch_answers_each_request_in_order(llm: LocalInference) -> None:
    batch = await llm.chat([greedy(p) for p in PROMPTS])
    alone = [(await llm.chat([greedy(p)]))[0] for p in PROMPTS]
    assert len(batch) == len(PROMPTS)
    for b, a in zip(batch, alone, strict=True):
        assert isinstance(b, Completion)
        assert b.completion_token_ids == a.completion_token_ids  # padding changes nothing
        assert b.text == a.text
    assert len({tuple(c.completion_token_ids) for c in batch}) > 1


async def test_tokens_text_and_logprobs_agree(llm: LocalInference) -> None:
    tok = llm.tokenizer
    for c in await llm.chat([greedy(p, max_tokens=16) for p in PROMPTS]):
        assert c.prompt_token_ids and c.completion_token_ids
        ids = c.completion_token_ids
        if c.finish_reason == "stop" and ids[-1] == tok.eos_token_id:
            ids = ids[:-1]  # the EOS is kept for the trainer, not shown in the text
        assert tok.decode(ids) == c.text
        assert c.logprobs is not None and len(c.logprobs) == len(c.completion_token_ids)
        assert all(lp <= 0.0 for lp in c.logprobs)
        assert c.model == "tiny" and c.adapter is None and c.latency_s > 0


async def test_logprobs_are_those_of_the_untempered_model(llm: LocalInference) -> None:
    import torch

    req = ChatRequest([{"role": "user", "content": "hi"}], max_tokens=6, temperature=1.7, seed=11)
    (c,) = await llm.chat([req])
    ids = torch.tensor([c.prompt_token_ids + c.completion_token_ids])
    with torch.no_grad():
        logits = llm.model(ids).logits[0, len(c.prompt_token_ids) - 1 : -1]
    expected = torch.log_softmax(logits, -1).gather(1, ids[0, len(c.prompt_token_ids) :, None])
    assert torch.allclose(torch.tensor(c.logprobs), expected[:, 0], atol=1e-4)


async def test_greedy_is_deterministic_and_max_tokens_is_respected(llm: LocalInference) -> None:
    first = await llm.chat([greedy("hi", max_tokens=7)])
    second = await llm.chat([greedy("hi", max_tokens=7)])
    assert first[0].completion_token_ids == second[0].completion_token_ids
    assert len(first[0].completion_token_ids) == 7
    assert first[0].finish_reason == "length" and first[0].truncated


async def test_seeded_sampling_is_reproducible(llm: LocalInference) -> None:
    def req(seed: int) -> ChatRequest:
        return ChatRequest(
            [{"role": "user", "content": "hi"}],
            max_tokens=10,
            temperature=1.0,
            top_p=0.9,
            seed=seed,
        )

    together = await llm.chat([req(5), req(5), req(6)])
    alone = await llm.chat([req(5)])
    assert together[0].completion_token_ids == together[1].completion_token_ids
    assert together[0].completion_token_ids == alone[0].completion_token_ids
    assert together[0].completion_token_ids != together[2].completion_token_ids


async def test_stop_string_ends_the_completion(llm: LocalInference) -> None:
    (free,) = await llm.chat([greedy("hi", max_tokens=20)])
    stop = free.text[6:9]
    assert stop and stop not in free.text[:6]
    (stopped,) = await llm.chat([greedy("hi", max_tokens=20, stop=[stop])])
    assert stopped.finish_reason == "stop"
    assert stop not in stopped.text
    assert free.text.startswith(stopped.text)
    assert llm.tokenizer.decode(stopped.completion_token_ids) == stopped.text
    assert len(stopped.logprobs) == len(stopped.completion_token_ids)


async def test_concurrent_callers_share_batches(llm: LocalInference) -> None:
    n = 24
    before = llm.batches
    results = await asyncio.gather(
        *(llm.chat([greedy(PROMPTS[i % len(PROMPTS)], max_tokens=5)]) for i in range(n))
    )
    assert all(len(r) == 1 and r[0].completion_token_ids for r in results)
    batches = llm.batches - before
    assert batches < n, f"{n} requests ran in {batches} batches"
    assert batches >= n // llm._batcher.max_batch


async def test_event_loop_stays_responsive_while_generating(llm: LocalInference) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    await llm.chat([greedy(p, max_tokens=40) for p in PROMPTS])
    task.cancel()
    assert ticks > 5


async def test_bad_requests_fail_fast(llm: LocalInference) -> None:
    with pytest.raises(InferenceError, match="max_tokens"):
        await llm.chat([greedy("hi", max_tokens=0)])
    with pytest.raises(InferenceError, match="top_p"):
        await llm.chat([ChatRequest([{"role": "user", "content": "x"}], top_p=0.0)])
    assert await llm.chat([]) == []


async def test_closed_client_refuses_work(tiny_model_dir) -> None:
    client = LocalInference(tiny_model_dir, device="cpu")
    await client.close()
    with pytest.raises(InferenceError, match="closed"):
        await client.chat([greedy("hi")])


async def test_run_in_worker_runs_between_batches(llm: LocalInference) -> None:
    import threading

    name = await llm.run_in_worker(lambda: threading.current_thread().name)
    assert name == "tentalis-inference"


async def test_bfloat16_weights_decode_with_float32_logprobs(tiny_model_dir) -> None:  # type: ignore[no-untyped-def]
    import torch

    client = LocalInference(tiny_model_dir, device="cpu", dtype="bfloat16", model_name="tiny")
    try:
        assert client.base_model.dtype == torch.bfloat16
        req = ChatRequest([{"role": "user", "content": "hi"}], max_tokens=6, temperature=1.0,
                          seed=3)
        (c,) = await client.chat([req])
        ids = torch.tensor([c.prompt_token_ids + c.completion_token_ids])
        with torch.no_grad():
            logits = client.model(ids).logits[0, len(c.prompt_token_ids) - 1 : -1].float()
        expected = torch.log_softmax(logits, -1).gather(1, ids[0, len(c.prompt_token_ids):, None])
        # incremental (KV cache) vs one full pass in bf16: equal up to bf16 rounding
        assert torch.allclose(torch.tensor(c.logprobs), expected[:, 0], atol=0.05)
        assert all(isinstance(lp, float) for lp in c.logprobs)
    finally:
        await client.close()
