"""What the experience store's queries return."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from tentalis.events import FeedbackEvent, ResultEvent, ScoreEvent, SessionEvent, TaskEvent


@dataclass(frozen=True)
class TaskView:
    """Everything recorded about one task. ``task`` is None when results arrived for a task
    whose TaskEvent was never recorded. Lists are in ``created_at`` order."""

    task_id: str
    task: TaskEvent | None
    results: list[ResultEvent] = field(default_factory=list)
    scores: list[ScoreEvent] = field(default_factory=list)
    feedback: list[FeedbackEvent] = field(default_factory=list)
    sessions: list[SessionEvent] = field(default_factory=list)

    def scores_for(self, result_event_id: str) -> list[ScoreEvent]:
        return [s for s in self.scores if s.result_event_id == result_event_id]


@dataclass(frozen=True)
class TaskSummary:
    """One line of a task listing."""

    task_id: str
    environment: str
    prompt: str
    split: str
    created_at: datetime
    num_results: int
    mean_outcome: float | None  # over every score of every result; None when unscored
    feedback_score: float | None  # the latest feedback's score


@dataclass(frozen=True)
class RolloutRow:
    """One scored result with its task and the LLM call that produced it: what training reads.

    Token ids and logprobs are the result's own, else those of the SessionEvent named by
    the result's ``session_event_id``; None when neither has them.
    """

    task_id: str
    task_event_id: str
    environment: str
    split: str
    group_id: str | None
    sample_index: int
    prompt: str
    answer: str | None
    result_event_id: str
    worker_id: str
    raw_text: str
    steps: list[str]
    final_answer: str | None
    parse_status: str
    result_error: str | None
    adapter: str | None
    score_event_id: str
    scorer: str
    outcome_score: float
    step_scores: list[float]
    components: dict[str, float]
    session_event_id: str | None
    prompt_token_ids: list[int] | None
    completion_token_ids: list[int] | None
    logprobs: list[float] | None
    created_at: datetime  # the result's
