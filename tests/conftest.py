"""Fixtures shared by every test package."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tentalis.events import ResultEvent, TaskEvent
from tentalis.steps.parsing import parse_steps


@pytest.fixture(scope="session", autouse=True)
def _environments_loaded() -> None:
    """Register the environments and scorers once, as the services and the CLI do before
    they look one up (``tentalis.envs.load_environments``); tests that build a Worker or a
    ScorerService by hand rely on it."""
    from tentalis.envs import load_environments

    load_environments()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random Llama + BPE tokenizer (``tentalis.models.build_tiny_llama``), built
    once per test session. Treat it as read-only."""
    from tentalis.models.tiny import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


async def _wait_for(
    predicate: Callable[[], object | Awaitable[object]], timeout: float = 10.0, what: str = ""
) -> None:
    """Poll ``predicate()`` (sync or async) until it is true; AssertionError after
    ``timeout`` seconds. A deadline instead of a fixed sleep: fast when the machine is,
    patient when it is loaded."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or predicate}")
        await asyncio.sleep(0.02)


@pytest.fixture
def wait_for() -> Callable[..., Awaitable[None]]:
    """``await wait_for(predicate, timeout=10.0, what="…")``: poll until true."""
    return _wait_for


class ScriptedInference:
    """A test double for InferenceClient: answers from a function of the request."""

    model_name = "scripted"

    def __init__(self, answer=None, fail_times: int = 0) -> None:  # type: ignore[no-untyped-def]
        self.answer = answer or (lambda req: "<step>1 + 1 = 2</step>\nAnswer: 2")
        self.fail_times = fail_times
        self.calls = 0
        self.requests: list = []
        self._adapters: dict[str, str] = {}
        self.model_lock = threading.RLock()  # what LocalInference offers a sharing trainer

    async def chat(self, requests):  # type: ignore[no-untyped-def]
        from tentalis.errors import InferenceError
        from tentalis.inference.base import Completion

        self.calls += 1
        if self.fail_times > 0:
            self.fail_times -= 1
            raise InferenceError("scripted failure")
        self.requests.extend(requests)
        out = []
        for r in requests:
            text = self.answer(r)
            out.append(
                Completion(
                    text=text,
                    completion_token_ids=list(range(len(text.split()))),
                    prompt_token_ids=[1, 2, 3],
                    adapter=r.adapter,
                    model=self.model_name,
                )
            )
        return out

    async def load_adapter(self, name: str, path: str) -> None:
        self._adapters[name] = str(path)

    async def unload_adapter(self, name: str) -> None:
        self._adapters.pop(name, None)

    def adapters(self) -> list[str]:
        return sorted(self._adapters)

    async def close(self) -> None:
        return None


@pytest.fixture
def scripted_inference():  # type: ignore[no-untyped-def]
    """Factory for a scripted InferenceClient double (unit tests only)."""
    return ScriptedInference


@pytest.fixture
async def memory_bus():  # type: ignore[no-untyped-def]
    from tentalis.bus.memory import MemoryBus

    bus = MemoryBus()
    await bus.connect()
    yield bus
    await bus.close()


async def _collect_events(bus, subjects, n, timeout=3.0):  # type: ignore[no-untyped-def]
    """Read ``n`` events from ``subjects`` through a probe consumer (acking them)."""
    import asyncio

    from tentalis.bus.base import ConsumerSpec

    spec = ConsumerSpec(name="probe", subjects=subjects, batch=50, fetch_timeout=0.1)
    got = []

    async def collect() -> None:
        async for batch in bus.consume(spec):
            for d in batch:
                got.append(d.event)
                await d.ack()
            if len(got) >= n:
                return

    await asyncio.wait_for(collect(), timeout)
    return got


@pytest.fixture
def collect_events():  # type: ignore[no-untyped-def]
    """``await collect_events(bus, subjects, n)``: the first ``n`` events on ``subjects``."""
    return _collect_events


@pytest.fixture
def make_result() -> Callable[..., tuple[TaskEvent, ResultEvent]]:
    """``make_result(text, answer="7")`` → (task, result) parsed the way a worker does (the
    scorer tests of rewards/ and envs/)."""

    def make(text: str, answer: str | None = "7", **result_fields) -> tuple[TaskEvent, ResultEvent]:
        task = TaskEvent(prompt="What is 3 + 4?", answer=answer)
        parsed = parse_steps(text)
        fields = {
            "task_id": task.task_id,
            "task": task,
            "worker_id": "w",
            "raw_text": text,
            "steps": parsed.steps,
            "final_answer": parsed.final_answer,
            "parse_status": parsed.status,
        }
        return task, ResultEvent(**(fields | result_fields))

    return make
