"""The bridge's request and response bodies (what its OpenAPI schema declares)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Id = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@\-]+$")]
Environment = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_\-]+$")]
TaskState = Literal["submitted", "pending", "answered", "scored", "done", "timed_out"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskSubmit(_In):
    """A task for the workers of one environment."""

    prompt: str = Field(min_length=1, max_length=20_000)
    environment: Environment = "math"
    answer: str | None = Field(default=None, max_length=2_000,
                               description="Ground truth for verifiers; never shown to workers.")
    metadata: dict[str, Any] = Field(default_factory=dict)
    adapter: Id | None = Field(default=None, description="Adapter to answer with.")
    max_new_tokens: int | None = Field(default=None, ge=1, le=32_768)
    temperature: float | None = Field(default=None, ge=0.0, le=5.0)


class RequestSubmit(_In):
    """A free-text request; it becomes one task under a request id."""

    text: str = Field(min_length=1, max_length=20_000)
    environment: Environment = "math"


class TaskAccepted(BaseModel):
    task_id: str
    event_id: str
    status_url: str


class RequestAccepted(BaseModel):
    request_id: str
    task_ids: list[str]


class ScoreFeedback(_In):
    """A score in [0, 1]."""

    kind: Literal["score"]
    score: float = Field(ge=0.0, le=1.0)
    text: str = Field(default="", max_length=20_000)


class ThumbsFeedback(_In):
    """Thumbs up (score 1) or down (score 0)."""

    kind: Literal["thumbs"]
    thumbs: Literal["up", "down"]
    text: str = Field(default="", max_length=20_000)


class CritiqueFeedback(_In):
    """A textual critique (optionally with a score)."""

    kind: Literal["critique"]
    text: str = Field(min_length=1, max_length=20_000)
    score: float | None = Field(default=None, ge=0.0, le=1.0)


class EditFeedback(_In):
    """An edited (corrected) answer."""

    kind: Literal["edit"]
    edited_answer: str = Field(min_length=1, max_length=20_000)
    text: str = Field(default="", max_length=20_000)


FeedbackBody = Annotated[
    ScoreFeedback | ThumbsFeedback | CritiqueFeedback | EditFeedback,
    Field(discriminator="kind"),
]


class TaskFeedbackIn(BaseModel):
    """Feedback on a task (optionally on one of its results)."""

    model_config = ConfigDict(extra="forbid")

    feedback: FeedbackBody
    result_event_id: Id | None = None
    author: str = Field(default="external", max_length=128)


class SessionFeedbackIn(BaseModel):
    """Feedback on a proxied session (optionally on one of its turns)."""

    model_config = ConfigDict(extra="forbid")

    feedback: FeedbackBody
    turn_event_id: Id | None = None
    author: str = Field(default="external", max_length=128)


class FeedbackAccepted(BaseModel):
    event_id: str
    kind: str


class ScoreOut(BaseModel):
    event_id: str
    scorer: str
    outcome_score: float
    step_scores: list[float]


class ResultOut(BaseModel):
    event_id: str
    worker_id: str
    raw_text: str
    steps: list[str]
    final_answer: str | None
    parse_status: str
    error: str | None
    scores: list[ScoreOut]


class FeedbackOut(BaseModel):
    event_id: str
    kind: str
    score: float | None
    feedback: str
    edited_answer: str | None
    author: str
    created_at: datetime


class TaskStatus(BaseModel):
    task_id: str
    status: TaskState
    prompt: str | None
    environment: str | None
    results: list[ResultOut]
    feedback: list[FeedbackOut]


class TurnOut(BaseModel):
    event_id: str
    turn_index: int
    trainable: bool
    turn_type: Literal["main", "side"] = "main"
    prompt_tokens: int | None = Field(
        default=None, description="Prompt token ids recorded (None: the backend gave none).")
    completion_tokens: int | None = Field(
        default=None, description="Completion token ids recorded (None: none given).")
    has_logprobs: bool = Field(default=False, description="Whether logprobs were recorded.")
    prompt_token_ids: list[int] | None = Field(default=None, description="With `tokens=true`.")
    completion_token_ids: list[int] | None = Field(
        default=None, description="With `tokens=true`.")
    logprobs: list[float] | None = Field(default=None, description="With `tokens=true`.")
    model: str
    completion: str
    finish_reason: str | None
    latency_s: float
    next_state: dict[str, Any] | None


class SessionOut(BaseModel):
    session_id: str
    turns: list[TurnOut]
    feedback: list[FeedbackOut]


class SessionSummaryOut(BaseModel):
    """One session of the listing: a turn is one call (its choices count once)."""

    session_id: str
    turns: int
    main_turns: int = Field(description="Answered main turns: the trainable ones.")
    side_turns: int = Field(description="Turns marked auxiliary (header or proxy rule).")
    failed_turns: int = Field(description="Calls refused by the proxy or failed by the backend.")
    first_at: datetime
    last_at: datetime
    model: str = Field(description="The model its latest turn named.")


class SessionList(BaseModel):
    """Sessions with the latest turn first; ask again with ``offset=next_offset``."""

    data: list[SessionSummaryOut]
    limit: int
    offset: int
    next_offset: int | None = Field(description="None on the last page.")


class ConsumerOut(BaseModel):
    name: str
    pending: int
    ack_pending: int


class BusOut(BaseModel):
    connected: bool
    messages: int | None = None
    consumers: list[ConsumerOut] = Field(default_factory=list)
    error: str | None = None


class StatusOut(BaseModel):
    bus: BusOut
    services: dict[str, dict[str, Any]]
    store: dict[str, int]
    publisher: dict[str, int]
