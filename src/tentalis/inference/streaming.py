"""Streaming out of the local engine: a request's tokens reach its caller as its batch decodes.

The decode loop runs on the engine's worker thread; each streamed request has a
:class:`RowStream` (the loop's :class:`~tentalis.inference.decoding.RowSink`) that puts
:class:`~tentalis.inference.base.TokenDelta` s on an asyncio queue of the caller's event
loop. :func:`read_stream` yields them until every request of the call has its completion,
and on exit (done, failed, or the caller stopped reading) marks the rows cancelled, so the
decode loop drops them at its next step.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from tentalis.inference.base import ChatRequest, Completion, TokenDelta
from tentalis.inference.decoding import RowResult


class RowStream:
    """One streamed request's sink: new final tokens → a TokenDelta on the caller's loop."""

    def __init__(self, index: int, loop: asyncio.AbstractEventLoop,
                 queue: asyncio.Queue[TokenDelta]) -> None:
        self.index = index
        self.cancelled = False  # set from the event loop, read by the decoding thread
        self.prompt_ids: list[int] = []  # set when the batch builds the row
        self.complete: Callable[[RowResult], Completion] | None = None  # idem
        self.completion: Completion | None = None
        self._loop = loop
        self._queue = queue
        self._sent = 0

    def step(self, res: RowResult, final: int) -> None:
        if final > self._sent:
            self._push(self._delta(res, final))

    def done(self, res: RowResult) -> None:
        assert self.complete is not None, "the batch sets complete before decoding"
        delta = self._delta(res, len(res.token_ids))
        delta.completion = self.completion = self.complete(res)
        self._push(delta)

    def _delta(self, res: RowResult, end: int) -> TokenDelta:
        start, self._sent = self._sent, end
        return TokenDelta(
            index=self.index,
            token_ids=res.token_ids[start:end],
            logprobs=res.logprobs[start:end],
            top_logprobs=res.top_logprobs[start:end] if res.top_logprobs else None,
            prompt_token_ids=list(self.prompt_ids) if start == 0 else None,
        )

    def _push(self, delta: TokenDelta) -> None:
        # RuntimeError: the caller's loop is closed, nobody reads any more
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._queue.put_nowait, delta)


@dataclass
class Job:
    """What the engine's batcher queues: a request, and its sink when streamed."""

    request: ChatRequest
    sink: RowStream | None = None


async def read_stream(
    requests: list[ChatRequest], submit: Callable[[list[Job]], Awaitable[list[Completion]]]
) -> AsyncIterator[TokenDelta]:
    """Submit ``requests`` as streamed jobs and yield their deltas as they come."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[TokenDelta] = asyncio.Queue()
    sinks = [RowStream(i, loop, queue) for i in range(len(requests))]
    task = asyncio.ensure_future(submit([Job(r, s) for r, s in zip(requests, sinks, strict=True)]))
    left = len(requests)
    try:
        while left:
            if task.done() and queue.empty():
                task.result()  # raises the batch's error; a clean end left every delta queued
                raise AssertionError("the batch ended without completing every stream")
            get = asyncio.ensure_future(queue.get())
            await asyncio.wait({get, task}, return_when=asyncio.FIRST_COMPLETED)
            if not get.done():
                get.cancel()
                continue
            delta = get.result()
            left -= delta.completion is not None
            yield delta
    finally:
        for s in sinks:
            s.cancelled = True
        task.cancel()  # a no-op once done; the batcher skips an abandoned job not yet run
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # error seen
