"""MicroBatcher semantics with a fake batch function (no model)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tentalis.errors import InferenceError
from tentalis.inference.batcher import MicroBatcher


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, items: list[int], submitted: list[float]) -> list:
        self.gate.wait(10)
        self.batches.append(list(items))
        return [ValueError(f"bad {i}") if i < 0 else i * 10 for i in items]


@pytest.fixture
def rec_batcher():
    rec = Recorder()
    b = MicroBatcher(rec, max_batch=4, window_s=0.02)
    yield rec, b
    rec.gate.set()
    b.close()


async def test_concurrent_submits_are_grouped_up_to_max_batch(rec_batcher) -> None:
    rec, b = rec_batcher
    results = await asyncio.gather(*(b.submit([i]) for i in range(10)))
    assert results == [[i * 10] for i in range(10)]
    assert all(len(batch) <= 4 for batch in rec.batches)
    assert b.batches == len(rec.batches) == 3 and b.items == 10


async def test_one_call_keeps_order_and_its_items_adjacent(rec_batcher) -> None:
    _, b = rec_batcher
    assert await b.submit([3, 1, 2]) == [30, 10, 20]


async def test_a_failing_item_fails_only_its_call(rec_batcher) -> None:
    _, b = rec_batcher
    good = asyncio.create_task(b.submit([1, 2]))
    with pytest.raises(ValueError, match="bad -1"):
        await b.submit([5, -1])
    assert await good == [10, 20]


async def test_calls_run_between_batches_in_arrival_order(rec_batcher) -> None:
    rec, b = rec_batcher
    rec.gate.clear()  # hold the first batch
    first = asyncio.create_task(b.submit([1]))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(b.submit([2]))
    await asyncio.sleep(0.01)
    seen_by_call = asyncio.create_task(b.call(lambda: [list(x) for x in rec.batches]))
    third = asyncio.create_task(b.submit([3]))
    await asyncio.sleep(0.01)
    rec.gate.set()
    assert await first == [10] and await second == [20] and await third == [30]
    assert await seen_by_call == [[1], [2]]  # ran after [2], before [3]
    assert rec.batches == [[1], [2], [3]]


async def test_cancelled_callers_are_skipped(rec_batcher) -> None:
    rec, b = rec_batcher
    rec.gate.clear()
    blocker = asyncio.create_task(b.submit([1]))
    await asyncio.sleep(0.05)
    doomed = asyncio.create_task(b.submit([7]))
    await asyncio.sleep(0.01)
    doomed.cancel()
    await asyncio.sleep(0.01)
    rec.gate.set()
    assert await blocker == [10]
    assert await b.submit([2]) == [20]
    assert [7] not in rec.batches and all(7 not in batch for batch in rec.batches)


async def test_a_crashing_batch_fails_its_items_but_not_the_thread() -> None:
    calls = 0

    def run(items: list[int], submitted: list[float]) -> list:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return items

    b = MicroBatcher(run, max_batch=2, window_s=0.0)
    with pytest.raises(InferenceError, match="RuntimeError: boom"):
        await b.submit([1])
    assert await b.submit([2]) == [2]
    b.close()
    with pytest.raises(InferenceError, match="closed"):
        await b.submit([3])
