"""Turn a model's completion for a task into the ResultEvent a worker publishes."""

from __future__ import annotations

from typing import Any

from tentalis.events import ResultEvent, TaskEvent, derived_id
from tentalis.inference.base import Completion
from tentalis.steps.parsing import parse_steps


def _result_identity(task: TaskEvent, worker_id: str) -> dict[str, Any]:
    """Fields every result of ``task`` shares; the id is derived from the task's, so a
    redelivered task's result is the same event (deduplicated by bus and store)."""
    return {
        "event_id": derived_id(task.event_id, "result"),
        "task_id": task.task_id,
        "task": task,
        "environment": task.environment,
        "worker_id": worker_id,
        "source": worker_id,
    }


def result_from_completion(
    task: TaskEvent, completion: Completion, worker_id: str, session_id: str
) -> ResultEvent:
    """The result of ``task`` answered by ``completion``: its steps and final answer parsed."""
    parsed = parse_steps(completion.text)
    return ResultEvent(
        **_result_identity(task, worker_id),
        raw_text=completion.text,
        steps=parsed.steps,
        final_answer=parsed.final_answer,
        parse_status=parsed.status,
        adapter=completion.adapter,
        session_event_id=session_id,
        latency_s=completion.latency_s,
        prompt_token_ids=completion.prompt_token_ids or None,
        completion_token_ids=completion.completion_token_ids or None,
        logprobs=completion.logprobs,
        finish_reason=completion.finish_reason,
    )


def failed_result(task: TaskEvent, worker_id: str, error: str) -> ResultEvent:
    """A task the worker could not answer, kept as data (not dropped)."""
    return ResultEvent(
        **_result_identity(task, worker_id),
        raw_text="",
        parse_status="error",
        error=error,
    )
