"""Manager: turns requests into tasks, waits for them, reviews every scored result.

Two loops run in every manager process:

* **review** — the durable consumer ``managers`` over all ScoreEvents (shared by manager
  replicas). Each scored result gets a FeedbackEvent (score + textual feedback) whose id
  is derived from the task's, so a score reviewed twice still yields one feedback.
* **tracking** — a live subscription to scores and feedback that resolves the tasks this
  process is waiting for.

``submit`` publishes tasks with at most ``max_in_flight`` outstanding and gives each
``task_timeout`` seconds from its publication; a task with no feedback by then gets a
``timeout`` FeedbackEvent (score 0), so every task ends with exactly one feedback.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence

from pydantic import BaseModel

from tentalis.agents.review import Reviewer
from tentalis.bus.base import Bus, ConsumerSpec, Delivery
from tentalis.config.agents import ManagerConfig
from tentalis.events import (
    Event,
    FeedbackEvent,
    ScoreEvent,
    Subjects,
    TaskEvent,
    derived_id,
    new_id,
)
from tentalis.inference.base import ChatRequest, InferenceClient

log = logging.getLogger(__name__)

_NUMBERED = re.compile(r"^\s*(\d{1,2})[.)]\s+(.+?)\s*$")


class TaskOutcome(BaseModel):
    """What became of one task: its score (with the result inside) and its feedback."""

    task: TaskEvent
    score: ScoreEvent | None = None
    feedback: FeedbackEvent | None = None
    timed_out: bool = False
    latency_s: float = 0.0  # from publishing the task to its feedback (or timeout)


class RequestOutcome(BaseModel):
    request_id: str
    text: str
    outcomes: list[TaskOutcome]


class Manager:
    """Publishes tasks, reviews scored results, and tracks what it is waiting for."""

    def __init__(
        self,
        bus: Bus,
        reviewer: Reviewer,
        config: ManagerConfig,
        inference: InferenceClient | None = None,
    ) -> None:
        self.bus = bus
        self.reviewer = reviewer
        self.config = config
        self.inference = inference
        self.reviewed = 0
        self._waiters: dict[str, asyncio.Future[FeedbackEvent]] = {}
        self._scores: dict[str, ScoreEvent] = {}
        self._unlisten: Callable[[], Awaitable[None]] | None = None

    # --- tracking -------------------------------------------------------------------------
    async def start_tracking(self) -> None:
        """Subscribe (live) to scores and feedback; call before submitting tasks."""
        if self._unlisten is None:
            self._unlisten = await self.bus.listen(
                [Subjects.SCORES_ALL, Subjects.FEEDBACK_ALL], self._on_event
            )

    async def stop_tracking(self) -> None:
        if self._unlisten is not None:
            await self._unlisten()
            self._unlisten = None

    async def _on_event(self, event: Event) -> None:
        task_id = event.task_id
        if task_id is None or task_id not in self._waiters:
            return
        if isinstance(event, ScoreEvent):
            self._scores[task_id] = event
        elif isinstance(event, FeedbackEvent):
            fut = self._waiters[task_id]
            if not fut.done():
                fut.set_result(event)

    # --- review -----------------------------------------------------------------------
    def review_spec(self) -> ConsumerSpec:
        return ConsumerSpec(name="managers", subjects=[Subjects.SCORES_ALL], batch=32)

    async def handle_score(self, delivery: Delivery) -> None:
        await self.handle_scores([delivery])

    async def handle_scores(self, deliveries: list[Delivery]) -> None:
        """Review a batch of scores; publish the feedback concurrently (the caller acks)."""
        feedback: list[FeedbackEvent] = []
        for d in deliveries:
            if isinstance(d.event, ScoreEvent):
                feedback.append(await self.review(d.event))
            else:
                await d.dead_letter(f"manager expected a score event, got {d.event.kind!r}")
        await asyncio.gather(*(self.bus.publish(f) for f in feedback))
        self.reviewed += len(feedback)

    async def review(self, score: ScoreEvent) -> FeedbackEvent:
        """The feedback for one scored result (its id is derived from the task's)."""
        value, text = await self.reviewer.review(score)
        return FeedbackEvent(
                event_id=derived_id(score.result.task.event_id, "feedback"),
                task_id=score.task_id,
                result_event_id=score.result.event_id,
                environment=score.environment,
                manager_id=self.config.manager_id,
                source=self.config.manager_id,
                feedback_kind="review",
                score=value,
                feedback=text,
            )

    # --- tasks --------------------------------------------------------------------------
    async def submit(
        self,
        tasks: Sequence[TaskEvent],
        on_done: Callable[[TaskOutcome], None] | None = None,
    ) -> list[TaskOutcome]:
        """Publish tasks (bounded in flight) and wait for each one's feedback or timeout."""
        await self.start_tracking()
        window = asyncio.Semaphore(self.config.max_in_flight)

        async def one(task: TaskEvent) -> TaskOutcome:
            async with window:
                outcome = await self._run_task(task)
            if on_done is not None:
                on_done(outcome)
            return outcome

        return list(await asyncio.gather(*(one(t) for t in tasks)))

    async def _run_task(self, task: TaskEvent) -> TaskOutcome:
        fut: asyncio.Future[FeedbackEvent] = asyncio.get_running_loop().create_future()
        self._waiters[task.task_id] = fut
        t0 = time.perf_counter()
        try:
            await self.bus.publish(task)
            try:
                feedback = await asyncio.wait_for(fut, self.config.task_timeout)
                timed_out = False
            except TimeoutError:
                feedback = await self._time_out(task)
                timed_out = True
            return TaskOutcome(
                task=task,
                score=self._scores.pop(task.task_id, None),
                feedback=feedback,
                timed_out=timed_out,
                latency_s=time.perf_counter() - t0,
            )
        finally:
            self._waiters.pop(task.task_id, None)

    async def _time_out(self, task: TaskEvent) -> FeedbackEvent:
        feedback = FeedbackEvent(
            event_id=derived_id(task.event_id, "feedback"),
            task_id=task.task_id,
            environment=task.environment,
            manager_id=self.config.manager_id,
            source=self.config.manager_id,
            feedback_kind="timeout",
            score=0.0,
            feedback=f"No scored result within {self.config.task_timeout:g} s.",
        )
        await self.bus.publish(feedback)
        return feedback

    # --- requests -----------------------------------------------------------------------
    async def decompose(self, text: str, request_id: str) -> list[TaskEvent]:
        """Split a request into tasks with the LLM; a single question passes through.

        A short request with at most one question is one task (asking a small model to
        "decompose" it only adds noise); longer requests go to the model, whose numbered
        list becomes the tasks. If the model's answer has no usable list, the request
        itself is the task.
        """
        parts = [text.strip()]
        multi = len(text) > 200 or text.count("?") > 1 or "\n" in text.strip()
        if multi and self.inference is not None:
            parts = await self._llm_split(text) or parts
        return [
            TaskEvent(
                prompt=p,
                environment=self.config.environment,
                request_id=request_id,
                source=self.config.manager_id,
                metadata={"request": text} if len(parts) > 1 else {},
            )
            for p in parts
        ]

    async def _llm_split(self, text: str) -> list[str]:
        assert self.inference is not None
        n = self.config.max_subtasks
        [out] = await self.inference.chat(
            [
                ChatRequest(
                    messages=[
                        {
                            "role": "system",
                            "content": f"Split the user's request into at most {n} "
                            "self-contained subtasks. Write them as a numbered list, one "
                            "per line, and nothing else.",
                        },
                        {"role": "user", "content": text},
                    ],
                    max_tokens=160,
                    temperature=0.0,
                    logprobs=False,
                )
            ]
        )
        items = [m.group(2) for line in out.text.splitlines() if (m := _NUMBERED.match(line))]
        return [i for i in items if len(i) > 3][:n]

    async def handle_request(self, text: str) -> RequestOutcome:
        request_id = new_id()
        tasks = await self.decompose(text, request_id)
        return RequestOutcome(
            request_id=request_id, text=text, outcomes=await self.submit(tasks)
        )

    async def _serve_ask(self, payload: bytes) -> bytes:
        request = AskRequest.model_validate_json(payload)
        outcome = await self.handle_request(request.text)
        return outcome.model_dump_json().encode()

    async def serve_requests(self) -> Callable[[], Awaitable[None]]:
        """Answer ``tentalis ask`` over core request/reply."""
        await self.start_tracking()
        return await self.bus.serve(Subjects.MANAGER_ASK, self._serve_ask, queue="managers")


class AskRequest(BaseModel):
    text: str
