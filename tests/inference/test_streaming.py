"""LocalInference.stream on the tiny model: tokens leave per decode step, in a batch, and
add up to exactly what ``chat`` returns; stop strings never take back a sent token;
closing a stream frees its row; top logprobs."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tentalis.errors import InferenceError
from tentalis.inference import ChatRequest, StreamingInference, TokenDelta
from tentalis.inference.local import LocalInference

PROMPTS = ["What is 2 + 3?", "def add(a, b):", "Name the capital of France.", "hi"]


def greedy(content: str, max_tokens: int = 24, **kw) -> ChatRequest:
    return ChatRequest([{"role": "user", "content": content}], max_tokens=max_tokens,
                       temperature=0.0, **kw)


async def collect(llm: LocalInference, requests: list[ChatRequest]
                  ) -> tuple[dict[int, list[TokenDelta]], dict[int, list[float]]]:
    """Every request's deltas, and the monotonic time each arrived on the event loop."""
    deltas: dict[int, list[TokenDelta]] = {}
    arrived: dict[int, list[float]] = {}
    async for d in llm.stream(requests):
        deltas.setdefault(d.index, []).append(d)
        arrived.setdefault(d.index, []).append(time.monotonic())
    return deltas, arrived


def test_is_a_streaming_engine(llm: LocalInference) -> None:
    assert isinstance(llm, StreamingInference)


async def test_streamed_tokens_add_up_to_the_chat_answer(llm: LocalInference) -> None:
    requests = [greedy(p, top_logprobs=2) for p in PROMPTS]
    whole = await llm.chat(requests)
    deltas, _ = await collect(llm, requests)
    for i, c in enumerate(whole):
        ds = deltas[i]
        assert ds[0].prompt_token_ids == c.prompt_token_ids
        assert all(d.completion is None for d in ds[:-1])
        done = ds[-1].completion
        assert done is not None and done.text == c.text
        assert [t for d in ds for t in d.token_ids] == c.completion_token_ids
        assert [x for d in ds for x in d.logprobs] == c.logprobs
        assert [x for d in ds for x in d.top_logprobs or []] == c.top_logprobs
        assert len(ds) > 2  # token by token, not one delta at the end


async def test_rows_of_one_batch_get_their_tokens_as_the_batch_steps(
    llm: LocalInference,
) -> None:
    steps: list[float] = []
    every_row_started = threading.Event()

    def hook(rows: int) -> None:
        steps.append(time.monotonic())
        if len(steps) == 2:  # a true stream has handed every row its first token by now
            every_row_started.wait(10)

    llm.step_hook = hook
    batches = llm.batches
    arrived: dict[int, float] = {}
    async for d in llm.stream([greedy(p, max_tokens=32) for p in PROMPTS]):
        arrived.setdefault(d.index, time.monotonic())
        if len(arrived) == len(PROMPTS):
            every_row_started.set()
    assert llm.batches == batches + 1  # all four decoded together
    assert len(steps) >= 3
    assert all(t < steps[-1] for t in arrived.values())


async def test_a_stop_string_never_takes_back_a_streamed_token(llm: LocalInference) -> None:
    free = (await llm.chat([greedy("def add(a, b):", max_tokens=40)]))[0]
    assert len(free.text) > 12
    stop = free.text[len(free.text) // 2:][:4]  # a string from the middle of the answer
    stopped = (await llm.chat([greedy("def add(a, b):", max_tokens=40, stop=[stop])]))[0]
    deltas, _ = await collect(llm, [greedy("def add(a, b):", max_tokens=40, stop=[stop])])
    ds = deltas[0]
    assert [t for d in ds for t in d.token_ids] == stopped.completion_token_ids
    assert ds[-1].completion is not None and ds[-1].completion.text == stopped.text
    assert stop not in stopped.text and stopped.finish_reason == "stop"


async def test_closing_the_stream_frees_the_row(llm: LocalInference) -> None:
    released = threading.Event()
    steps: list[int] = []

    def hook(rows: int) -> None:
        steps.append(rows)
        if len(steps) == 2:
            released.wait(10)  # hold the batch until the reader has gone

    llm.step_hook = hook
    stream = llm.stream([greedy("def add(a, b):", max_tokens=1500)])
    first = await anext(stream)
    assert first.completion is None
    await stream.aclose()
    released.set()
    await llm.run_in_worker(lambda: None)  # runs once the batch is over
    assert steps[-1] == 0 and len(steps) <= 4  # ended at the next step, not after 1500
    assert llm.cancelled_rows == 1


async def test_an_invalid_request_raises_before_streaming(llm: LocalInference) -> None:
    with pytest.raises(InferenceError, match="top_logprobs"):
        llm.stream([greedy("hi", top_logprobs=21)])
    with pytest.raises(InferenceError, match="unknown adapter"):
        llm.stream([greedy("hi", adapter="nope")])


async def test_top_logprobs_are_sorted_and_contain_the_greedy_choice(
    llm: LocalInference,
) -> None:
    c = (await llm.chat([greedy("What is 2 + 3?", max_tokens=8, top_logprobs=5)]))[0]
    assert c.top_logprobs is not None and c.logprobs is not None
    assert len(c.top_logprobs) == len(c.completion_token_ids)
    for tok, lp, top in zip(c.completion_token_ids, c.logprobs, c.top_logprobs, strict=True):
        assert len(top) == 5
        assert top[0] == (tok, lp)  # greedy: the chosen token is the most likely
        assert [x for _, x in top] == sorted((x for _, x in top), reverse=True)
    plain = (await llm.chat([greedy("What is 2 + 3?", max_tokens=8)]))[0]
    assert plain.top_logprobs is None


async def test_stream_runs_concurrently_with_chat_calls(llm: LocalInference) -> None:
    async def streamed() -> list[int]:
        return [t async for d in llm.stream([greedy("hi")]) for t in d.token_ids]

    ids, (answer,) = await asyncio.gather(streamed(), llm.chat([greedy("hi")]))
    assert ids == answer.completion_token_ids
