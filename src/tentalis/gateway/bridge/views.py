"""From what the store holds to what the bridge answers."""

from __future__ import annotations

from tentalis.events import FeedbackEvent, SessionEvent
from tentalis.gateway.bridge.models import (
    FeedbackOut,
    ResultOut,
    ScoreOut,
    SessionList,
    SessionOut,
    SessionSummaryOut,
    TaskState,
    TaskStatus,
    TurnOut,
)
from tentalis.store.records import TaskView
from tentalis.store.sessions import SessionSummary, SessionView


def feedback_out(f: FeedbackEvent) -> FeedbackOut:
    return FeedbackOut(event_id=f.event_id, kind=f.feedback_kind, score=f.score,
                       feedback=f.feedback, edited_answer=f.edited_answer,
                       author=f.manager_id or f.source, created_at=f.created_at)


def task_state(view: TaskView) -> TaskState:
    """Where a recorded task stands: pending → answered → scored → done (or timed_out)."""
    verdicts = [f for f in view.feedback if f.feedback_kind in ("review", "timeout")]
    if verdicts:
        return "timed_out" if verdicts[-1].feedback_kind == "timeout" else "done"
    if view.scores:
        return "scored"
    return "answered" if view.results else "pending"


def task_status(view: TaskView) -> TaskStatus:
    return TaskStatus(
        task_id=view.task_id,
        status=task_state(view),
        prompt=view.task.prompt if view.task else None,
        environment=view.task.environment if view.task else None,
        results=[
            ResultOut(
                event_id=r.event_id, worker_id=r.worker_id, raw_text=r.raw_text, steps=r.steps,
                final_answer=r.final_answer, parse_status=r.parse_status, error=r.error,
                scores=[ScoreOut(event_id=s.event_id, scorer=s.scorer,
                                 outcome_score=s.outcome_score, step_scores=s.step_scores)
                        for s in view.scores_for(r.event_id)],
            )
            for r in view.results
        ],
        feedback=[feedback_out(f) for f in view.feedback],
    )  # fmt: skip


def turn_out(t: SessionEvent, tokens: bool) -> TurnOut:
    """One recorded turn; its token ids and logprobs themselves only when ``tokens``."""
    return TurnOut(
        event_id=t.event_id, turn_index=t.turn_index, trainable=t.trainable,
        turn_type=t.turn_type, model=t.model, completion=t.completion,
        finish_reason=t.finish_reason, latency_s=t.latency_s, next_state=t.next_state,
        prompt_tokens=None if t.prompt_token_ids is None else len(t.prompt_token_ids),
        completion_tokens=None if t.completion_token_ids is None
        else len(t.completion_token_ids),
        has_logprobs=t.logprobs is not None,
        **({"prompt_token_ids": t.prompt_token_ids,
            "completion_token_ids": t.completion_token_ids,
            "logprobs": t.logprobs} if tokens else {}),
    )


def session_out(view: SessionView, tokens: bool = False) -> SessionOut:
    return SessionOut(
        session_id=view.session_id,
        turns=[turn_out(t, tokens) for t in view.turns],
        feedback=[feedback_out(f) for f in view.feedback],
    )


def session_list(summaries: list[SessionSummary], limit: int, offset: int) -> SessionList:
    """A page of the listing; ``summaries`` holds one more than ``limit`` when a next page
    exists."""
    page = summaries[:limit]
    return SessionList(
        data=[SessionSummaryOut(**vars(s)) for s in page], limit=limit, offset=offset,
        next_offset=offset + limit if len(summaries) > limit else None)
