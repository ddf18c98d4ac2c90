"""A micro-batcher: asyncio callers in, batches out on one dedicated worker thread.

Callers from any coroutine ``submit`` items; the worker thread takes the first waiting
item, waits up to ``window_s`` for more (never longer once ``max_batch`` are waiting) and
runs them as one batch. While a batch runs, new items queue up and form the next one, so
under load batches fill without waiting. ``call`` runs a function on the same thread
*between* batches — the only place where model state (adapters) changes, so a batch never
sees a half-applied change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from tentalis.errors import InferenceError

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)


class _Item:
    __slots__ = ("abandoned", "future", "loop", "payload", "submitted")

    def __init__(self, payload: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.payload = payload
        self.loop = loop
        self.future: asyncio.Future = loop.create_future()
        self.submitted = time.monotonic()
        self.abandoned = False  # the caller stopped waiting; skip if not started


class _Call(_Item):
    __slots__ = ()


def _settle(future: asyncio.Future, value: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


class MicroBatcher(Generic[T, R]):
    """Run ``run_batch(list[T]) -> list[R | BaseException]`` on one worker thread."""

    def __init__(
        self,
        run_batch: Callable[[list[T], list[float]], list[R | BaseException]],
        *,
        max_batch: int = 8,
        window_s: float = 0.005,
        name: str = "tentalis-inference",
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self._run_batch = run_batch
        self.max_batch = max_batch
        self.window_s = window_s
        self.batches = 0  # batches run so far (a test and metrics hook)
        self.items = 0
        self._queue: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # --- caller side (event loop) ---------------------------------------------------
    async def submit(self, payloads: Sequence[T]) -> list[R]:
        """Queue ``payloads`` (adjacent, in order) and wait for all results.

        If one fails, its exception is raised and the rest of this call is abandoned;
        other callers' items in the same batch are unaffected.
        """
        loop = asyncio.get_running_loop()
        items = [_Item(p, loop) for p in payloads]
        self._enqueue(items)
        try:
            return list(await asyncio.gather(*(i.future for i in items)))
        finally:
            for i in items:  # gather may already have cancelled the futures
                if not i.future.done() or i.future.cancelled():
                    i.abandoned = True
                    i.future.cancel()

    async def call(self, fn: Callable[[], R]) -> R:
        """Run ``fn()`` on the worker thread between batches and return its result."""
        item = _Call(fn, asyncio.get_running_loop())
        self._enqueue([item])
        return await item.future

    def _enqueue(self, items: list[_Item]) -> None:
        with self._cond:
            if self._closed:
                raise InferenceError("inference client is closed")
            self._queue.extend(items)
            self._cond.notify()

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop after the current batch; queued work fails with InferenceError."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    # --- worker side -------------------------------------------------------------------
    def _next_work(self) -> list[_Item] | _Call | None:
        with self._cond:
            while True:
                while self._queue and self._queue[0].abandoned:
                    self._queue.popleft()
                if self._queue or self._closed:
                    break
                self._cond.wait()
            if self._closed:
                return None
            first = self._queue.popleft()
            if isinstance(first, _Call):
                return first
            batch = [first]
            deadline = time.monotonic() + self.window_s
            while len(batch) < self.max_batch and not self._closed:
                if self._queue:
                    if isinstance(self._queue[0], _Call):
                        break  # run this batch first, then the call, in arrival order
                    nxt = self._queue.popleft()
                    if not nxt.abandoned:
                        batch.append(nxt)
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return batch

    def _loop(self) -> None:
        while (work := self._next_work()) is not None:
            if isinstance(work, _Call):
                self._run_call(work)
            else:
                self._run(work)
        with self._cond:
            left, self._queue = list(self._queue), deque()
        for item in left:
            self._deliver(item, None, InferenceError("inference client closed"))

    def _run_call(self, call: _Call) -> None:
        try:
            self._deliver(call, call.payload(), None)
        except BaseException as exc:
            self._deliver(call, None, exc)

    def _run(self, batch: list[_Item]) -> None:
        self.batches += 1
        self.items += len(batch)
        try:
            results = self._run_batch([i.payload for i in batch], [i.submitted for i in batch])
        except Exception as exc:  # a broken batch fails its requests, never the thread
            log.exception("inference batch failed")
            err = (
                exc
                if isinstance(exc, InferenceError)
                else InferenceError(f"generation failed: {type(exc).__name__}: {exc}")
            )
            results = [err] * len(batch)
        for item, res in zip(batch, results, strict=True):
            if isinstance(res, BaseException):
                self._deliver(item, None, res)
            else:
                self._deliver(item, res, None)

    @staticmethod
    def _deliver(item: _Item, value: Any, error: BaseException | None) -> None:
        # RuntimeError: the caller's event loop is closed, so nobody is waiting
        with contextlib.suppress(RuntimeError):
            item.loop.call_soon_threadsafe(_settle, item.future, value, error)
