"""The bridge: HTTP ↔ NATS for agent runtimes that cannot speak NATS.

Writes (tasks, requests, feedback; their texts redacted) become events handed to an
:class:`EventPublisher`, so a call returns its id at once and a bus hiccup spools instead
of failing. Reads (task status, steps, scores, feedback; sessions; counts) come from the
experience store, which the recorder fills from the bus; a task the bridge accepted but
the store has not seen yet reads as ``submitted``. ``/v1/events`` relays live bus events
as Server-Sent Events.

A client may send ``Idempotency-Key`` with a write: the event id is derived from it, so a
retried call publishes the same event, which the bus and the store keep once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Path, Query, Request, status
from fastapi.responses import StreamingResponse

from tentalis.bus.base import Bus
from tentalis.events import FeedbackEvent, TaskEvent, derived_id, new_id
from tentalis.gateway.bridge_events import event_stream, parse_subjects
from tentalis.gateway.bridge_models import (
    BusOut,
    ConsumerOut,
    FeedbackAccepted,
    FeedbackBody,
    Id,
    RequestAccepted,
    RequestSubmit,
    SessionFeedbackIn,
    SessionOut,
    StatusOut,
    TaskAccepted,
    TaskFeedbackIn,
    TaskStatus,
    TaskSubmit,
)
from tentalis.gateway.bridge_views import session_out, task_status
from tentalis.gateway.openai_shapes import ERROR_RESPONSES, SSE_EVENT_SCHEMA
from tentalis.gateway.publisher import EventPublisher
from tentalis.gateway.redaction import redact_value
from tentalis.gateway.security import SecurityConfig, redact, secure
from tentalis.store import ExperienceStore
from tentalis.store.sessions import session_view

IdempotencyKey = Annotated[str | None, Header(max_length=128, description="Retry-safe writes.")]
_ERRORS = {k: v for k, v in ERROR_RESPONSES.items() if k in (400, 401, 404, 413, 422, 429)}
_ERRORS[404] = {"model": ERROR_RESPONSES[400]["model"], "description": "Unknown id"}


class BridgeState:
    def __init__(self, bus: Bus, publisher: EventPublisher, store: ExperienceStore,
                 source: str) -> None:
        self.bus, self.publisher, self.store, self.source = bus, publisher, store, source
        self.submitted: OrderedDict[str, TaskEvent] = OrderedDict()

    def remember(self, task: TaskEvent) -> None:
        self.submitted[task.task_id] = task
        while len(self.submitted) > 10_000:
            self.submitted.popitem(last=False)


def _event_id(key: str | None, *scope: str) -> str:
    return derived_id("bridge", *scope, key) if key else new_id()


def _feedback_fields(body: FeedbackBody) -> dict[str, Any]:
    score = getattr(body, "score", None)
    if body.kind == "thumbs":
        score = 1.0 if body.thumbs == "up" else 0.0
    edited = getattr(body, "edited_answer", None)
    return {"feedback_kind": body.kind, "score": score, "feedback": redact(body.text),
            "edited_answer": redact(edited) if edited else None}


def create_bridge_app(
    bus: Bus,
    publisher: EventPublisher,
    store: ExperienceStore,
    security: SecurityConfig | None = None,
    *,
    source: str = "bridge",
) -> FastAPI:
    """The bridge app; it starts and closes ``publisher`` (``bus`` and ``store`` stay open)."""
    state = BridgeState(bus, publisher, store, source)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await publisher.start()
        try:
            yield
        finally:
            await publisher.close()

    app = FastAPI(title="tentalis bridge", version="1", lifespan=lifespan,
                  description="Submit tasks, read their steps, scores and feedback, post "
                  "feedback, follow live events.")
    app.state.bridge = state
    if security is not None:
        secure(app, security)

    def publish(event: Any) -> None:
        if not publisher.running:  # served without a lifespan (in-process test clients)
            asyncio.get_running_loop().create_task(publisher.start())
        publisher.submit(event)

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        """Liveness (no key needed)."""
        return {"status": "ok"}

    @app.post("/v1/tasks", status_code=status.HTTP_202_ACCEPTED, responses=_ERRORS)
    async def submit_task(body: TaskSubmit, idempotency_key: IdempotencyKey = None
                          ) -> TaskAccepted:
        """Publish a task; returns its id at once (poll its status)."""
        event_id = _event_id(idempotency_key, "task")
        task = TaskEvent(event_id=event_id, task_id=event_id, source=source,
                         **redact_value(body.model_dump(exclude_none=True)))
        state.remember(task)
        publish(task)
        return TaskAccepted(task_id=task.task_id, event_id=task.event_id,
                            status_url=f"/v1/tasks/{task.task_id}")

    @app.post("/v1/requests", status_code=status.HTTP_202_ACCEPTED, responses=_ERRORS)
    async def submit_request(body: RequestSubmit, idempotency_key: IdempotencyKey = None
                             ) -> RequestAccepted:
        """Publish a free-text request as a task under a request id."""
        request_id = _event_id(idempotency_key, "request")
        task = TaskEvent(event_id=derived_id(request_id, "0"), task_id=derived_id(request_id, "0"),
                         prompt=redact(body.text), environment=body.environment,
                         request_id=request_id, source=source)
        state.remember(task)
        publish(task)
        return RequestAccepted(request_id=request_id, task_ids=[task.task_id])

    @app.get("/v1/tasks/{task_id}", responses=_ERRORS)
    async def get_task(task_id: Annotated[str, Path(max_length=128)]) -> TaskStatus:
        """The task's status, results with their steps and scores, and every feedback."""
        view = await asyncio.to_thread(store.task_view, task_id)
        if view is None:
            task = state.submitted.get(task_id)
            if task is None:
                raise HTTPException(404, "unknown task id")
            return TaskStatus(task_id=task_id, status="submitted", prompt=task.prompt,
                              environment=task.environment, results=[], feedback=[])
        return task_status(view)

    @app.post("/v1/tasks/{task_id}/feedback", status_code=status.HTTP_202_ACCEPTED,
              responses=_ERRORS)
    async def task_feedback(task_id: Annotated[str, Path(max_length=128)],
                            body: TaskFeedbackIn, idempotency_key: IdempotencyKey = None
                            ) -> FeedbackAccepted:
        """External feedback on a task: a score, thumbs, a critique or an edited answer."""
        task = state.submitted.get(task_id)
        if task is None:
            view = await asyncio.to_thread(store.task_view, task_id)
            task = view.task if view is not None else None
        if task is None:
            raise HTTPException(404, "unknown task id")
        event = FeedbackEvent(
            event_id=_event_id(idempotency_key, "feedback", task_id), task_id=task_id,
            result_event_id=body.result_event_id, environment=task.environment,
            manager_id=body.author, source=source, **_feedback_fields(body.feedback))
        publish(event)
        return FeedbackAccepted(event_id=event.event_id, kind=event.feedback_kind)

    @app.get("/v1/sessions/{session_id}", responses=_ERRORS)
    async def get_session(session_id: Annotated[Id, Path()]) -> SessionOut:
        """A proxied session: its turns (with next-state links) and its feedback."""
        view = await asyncio.to_thread(session_view, store, session_id)
        if view is None:
            raise HTTPException(404, "unknown session id")
        return session_out(view)

    @app.post("/v1/sessions/{session_id}/feedback", status_code=status.HTTP_202_ACCEPTED,
              responses=_ERRORS)
    async def session_feedback(session_id: Annotated[Id, Path()], body: SessionFeedbackIn,
                               idempotency_key: IdempotencyKey = None) -> FeedbackAccepted:
        """External feedback on a proxied session (or one of its turns)."""
        event = FeedbackEvent(
            event_id=_event_id(idempotency_key, "session-feedback", session_id),
            task_id=f"session:{session_id}", session_id=session_id,
            session_event_id=body.turn_event_id, environment="session",
            manager_id=body.author, source=source, **_feedback_fields(body.feedback))
        publish(event)
        return FeedbackAccepted(event_id=event.event_id, kind=event.feedback_kind)

    @app.get("/v1/status", responses=_ERRORS)
    async def get_status() -> StatusOut:
        """Bus, services (their heartbeats), store counts and the bridge's publisher."""
        try:
            info = await asyncio.wait_for(bus.info(), 5)
            health = await asyncio.wait_for(bus.get_health(), 5)
            bus_out = BusOut(connected=True, messages=info.messages, consumers=[
                ConsumerOut(name=c.name, pending=c.pending, ack_pending=c.ack_pending)
                for c in info.consumers])
        except Exception as exc:
            bus_out, health = BusOut(connected=False, error=redact(str(exc))[:300]), {}
        counts = await asyncio.to_thread(store.counts)
        return StatusOut(bus=bus_out, services=health, store=counts,
                         publisher=vars(publisher.stats))

    @app.get("/v1/events", response_class=StreamingResponse, responses={
        200: {"content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
              "description": "Server-Sent Events: `event: <kind>`, `data: <event JSON>`"},
        **_ERRORS})
    async def events(
        request: Request,
        subjects: Annotated[str, Query(max_length=200, description="e.g. task,score")] = "all",
        max_events: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    ) -> StreamingResponse:
        """Live events (at most once; the store keeps them all)."""
        try:
            names = parse_subjects(subjects)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return StreamingResponse(
            event_stream(bus, names, request.is_disconnected, max_events=max_events),
            media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    return app
