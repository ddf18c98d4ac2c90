"""The bridge's routes; their state comes through :func:`bridge_state` (override it to
mount the router alone)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, status
from fastapi.responses import StreamingResponse

from tentalis.events import FeedbackEvent, TaskEvent, derived_id, new_id
from tentalis.gateway.bridge.events import event_stream, parse_subjects
from tentalis.gateway.bridge.models import (
    BusOut,
    ConsumerOut,
    FeedbackAccepted,
    FeedbackBody,
    Id,
    RequestAccepted,
    RequestSubmit,
    SessionFeedbackIn,
    SessionList,
    SessionOut,
    StatusOut,
    TaskAccepted,
    TaskFeedbackIn,
    TaskStatus,
    TaskSubmit,
)
from tentalis.gateway.bridge.state import BridgeState
from tentalis.gateway.bridge.views import session_list, session_out, task_status
from tentalis.gateway.openai.shapes import ERROR_RESPONSES, SSE_EVENT_SCHEMA
from tentalis.gateway.security import redact
from tentalis.gateway.security.redaction import redact_value
from tentalis.store.sessions import list_sessions, session_view

IdempotencyKey = Annotated[str | None, Header(max_length=128, description="Retry-safe writes.")]
_ERRORS = {k: v for k, v in ERROR_RESPONSES.items() if k in (400, 401, 404, 413, 422, 429)}
_ERRORS[404] = {"model": ERROR_RESPONSES[400]["model"], "description": "Unknown id"}


def bridge_state(request: Request) -> BridgeState:
    """The app's :class:`BridgeState` (``app.state.bridge``)."""
    return request.app.state.bridge  # type: ignore[no-any-return]


State = Annotated[BridgeState, Depends(bridge_state)]

router = APIRouter()


def _event_id(key: str | None, *scope: str) -> str:
    return derived_id("bridge", *scope, key) if key else new_id()


def _feedback_fields(body: FeedbackBody) -> dict[str, Any]:
    score = getattr(body, "score", None)
    if body.kind == "thumbs":
        score = 1.0 if body.thumbs == "up" else 0.0
    edited = getattr(body, "edited_answer", None)
    return {"feedback_kind": body.kind, "score": score, "feedback": redact(body.text),
            "edited_answer": redact(edited) if edited else None}


@router.get("/health", tags=["health"])
async def health() -> dict[str, str]:
    """Liveness (no key needed)."""
    return {"status": "ok"}


@router.post("/v1/tasks", status_code=status.HTTP_202_ACCEPTED, responses=_ERRORS)
async def submit_task(body: TaskSubmit, state: State, idempotency_key: IdempotencyKey = None
                      ) -> TaskAccepted:
    """Publish a task; returns its id at once (poll its status)."""
    event_id = _event_id(idempotency_key, "task")
    task = TaskEvent(event_id=event_id, task_id=event_id, source=state.source,
                     **redact_value(body.model_dump(exclude_none=True)))
    state.remember(task)
    state.publish(task)
    return TaskAccepted(task_id=task.task_id, event_id=task.event_id,
                        status_url=f"/v1/tasks/{task.task_id}")


@router.post("/v1/requests", status_code=status.HTTP_202_ACCEPTED, responses=_ERRORS)
async def submit_request(body: RequestSubmit, state: State,
                         idempotency_key: IdempotencyKey = None) -> RequestAccepted:
    """Publish a free-text request as a task under a request id."""
    request_id = _event_id(idempotency_key, "request")
    task = TaskEvent(event_id=derived_id(request_id, "0"), task_id=derived_id(request_id, "0"),
                     prompt=redact(body.text), environment=body.environment,
                     request_id=request_id, source=state.source)
    state.remember(task)
    state.publish(task)
    return RequestAccepted(request_id=request_id, task_ids=[task.task_id])


@router.get("/v1/tasks/{task_id}", responses=_ERRORS)
async def get_task(task_id: Annotated[str, Path(max_length=128)], state: State) -> TaskStatus:
    """The task's status, results with their steps and scores, and every feedback."""
    view = await asyncio.to_thread(state.store.task_view, task_id)
    if view is None:
        task = state.submitted.get(task_id)
        if task is None:
            raise HTTPException(404, "unknown task id")
        return TaskStatus(task_id=task_id, status="submitted", prompt=task.prompt,
                          environment=task.environment, results=[], feedback=[])
    return task_status(view)


@router.post("/v1/tasks/{task_id}/feedback", status_code=status.HTTP_202_ACCEPTED,
             responses=_ERRORS)
async def task_feedback(task_id: Annotated[str, Path(max_length=128)], body: TaskFeedbackIn,
                        state: State, idempotency_key: IdempotencyKey = None
                        ) -> FeedbackAccepted:
    """External feedback on a task: a score, thumbs, a critique or an edited answer."""
    task = state.submitted.get(task_id)
    if task is None:
        view = await asyncio.to_thread(state.store.task_view, task_id)
        task = view.task if view is not None else None
    if task is None:
        raise HTTPException(404, "unknown task id")
    event = FeedbackEvent(
        event_id=_event_id(idempotency_key, "feedback", task_id), task_id=task_id,
        result_event_id=body.result_event_id, environment=task.environment,
        manager_id=body.author, source=state.source, **_feedback_fields(body.feedback))
    state.publish(event)
    return FeedbackAccepted(event_id=event.event_id, kind=event.feedback_kind)


@router.get("/v1/sessions", responses=_ERRORS)
async def list_recent_sessions(
    state: State,
    limit: Annotated[int, Query(ge=1, le=200, description="Sessions per page.")] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Sessions to skip.")] = 0,
) -> SessionList:
    """Recorded proxy sessions, latest turn first: id, turns (main, side, failed), first
    and last time, model. A client that sent no ``X-Session-Id`` finds its session here
    (or in the ``X-Session-Id`` header of every proxy answer)."""
    found = await asyncio.to_thread(list_sessions, state.store, limit + 1, offset)
    return session_list(found, limit, offset)


@router.get("/v1/sessions/{session_id}", responses=_ERRORS)
async def get_session(
    session_id: Annotated[Id, Path()],
    state: State,
    tokens: Annotated[bool, Query(description="Include each turn's token ids and logprobs "
                                              "(their counts are always there).")] = False,
) -> SessionOut:
    """A proxied session: its turns (with next-state links) and its feedback."""
    view = await asyncio.to_thread(session_view, state.store, session_id)
    if view is None:
        raise HTTPException(404, "unknown session id")
    return session_out(view, tokens)


@router.post("/v1/sessions/{session_id}/feedback", status_code=status.HTTP_202_ACCEPTED,
             responses=_ERRORS)
async def session_feedback(session_id: Annotated[Id, Path()], body: SessionFeedbackIn,
                           state: State, idempotency_key: IdempotencyKey = None
                           ) -> FeedbackAccepted:
    """External feedback on a proxied session (or one of its turns)."""
    event = FeedbackEvent(
        event_id=_event_id(idempotency_key, "session-feedback", session_id),
        task_id=f"session:{session_id}", session_id=session_id,
        session_event_id=body.turn_event_id, environment="session",
        manager_id=body.author, source=state.source, **_feedback_fields(body.feedback))
    state.publish(event)
    return FeedbackAccepted(event_id=event.event_id, kind=event.feedback_kind)


@router.get("/v1/status", responses=_ERRORS)
async def get_status(state: State) -> StatusOut:
    """Bus, services (their heartbeats), store counts and the bridge's publisher."""
    bus = state.bus
    try:
        info = await asyncio.wait_for(bus.info(), 5)
        health = await asyncio.wait_for(bus.get_health(), 5)
        bus_out = BusOut(connected=True, messages=info.messages, consumers=[
            ConsumerOut(name=c.name, pending=c.pending, ack_pending=c.ack_pending)
            for c in info.consumers])
    except Exception as exc:
        bus_out, health = BusOut(connected=False, error=redact(str(exc))[:300]), {}
    counts = await asyncio.to_thread(state.store.counts)
    return StatusOut(bus=bus_out, services=health, store=counts,
                     publisher=vars(state.publisher.stats))


@router.get("/v1/events", response_class=StreamingResponse, responses={
    200: {"content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
          "description": "Server-Sent Events: `event: <kind>`, `data: <event JSON>`"},
    **_ERRORS})
async def events(
    request: Request,
    state: State,
    subjects: Annotated[str, Query(max_length=200, description="e.g. task,score")] = "all",
    max_events: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> StreamingResponse:
    """Live events (at most once; the store keeps them all)."""
    try:
        names = parse_subjects(subjects)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    return StreamingResponse(
        event_stream(state.bus, names, request.is_disconnected, max_events=max_events),
        media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
