"""The wire contract: every event that crosses a process boundary, and its subject.

Events are pydantic models serialised as JSON. Each carries ``kind`` (the discriminator),
``schema_version`` (``MAJOR.MINOR``), ``event_id`` (the deduplication key everywhere:
``Nats-Msg-Id`` on publish, primary key in the store), ``task_id`` and ``created_at``.

Compatibility rule: a consumer accepts any event of its own MAJOR version and ignores
fields it does not know (a newer MINOR may add fields). A different MAJOR, an unknown
``kind`` or a malformed payload raises :class:`EventDecodeError`; the bus routes such
payloads to the dead-letter subject with the reason.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from tentalis.errors import EventDecodeError

SCHEMA_VERSION = "1.0"
SCHEMA_MAJOR = SCHEMA_VERSION.split(".")[0]

# Namespace for deterministic event ids (a redelivered task must yield the same result id).
_EVENT_NS = uuid.UUID("6f1c2a4e-3b0d-4c55-9a51-7d2f8e7c9b10")


def new_id() -> str:
    return uuid.uuid4().hex


def derived_id(*parts: str) -> str:
    """A stable id derived from other ids: the same inputs always give the same id."""
    return uuid.uuid5(_EVENT_NS, "/".join(parts)).hex


def utcnow() -> datetime:
    return datetime.now(UTC)


class Subjects:
    """Every NATS subject and stream name, in one place."""

    STREAM = "TENTALIS"
    PREFIX = "tentalis.ev"
    ALL = "tentalis.ev.>"
    TASKS_ALL = "tentalis.ev.task.>"
    RESULTS_ALL = "tentalis.ev.result.>"
    SCORES_ALL = "tentalis.ev.score.>"
    FEEDBACK_ALL = "tentalis.ev.feedback.>"
    SESSION = "tentalis.ev.session"
    SESSION_LINK = "tentalis.ev.session.link"
    MODEL_UPDATE = "tentalis.ev.model.update"
    ADAPTER_LOADED = "tentalis.ev.model.loaded"
    DEAD_LETTER = "tentalis.ev.deadletter"
    GUARD = "tentalis.ev.guard"
    # core request/reply (not persisted)
    MANAGER_ASK = "tentalis.rpc.manager.ask"
    HEALTH_BUCKET = "tentalis_health"

    @staticmethod
    def task(environment: str) -> str:
        return f"tentalis.ev.task.{environment}"

    @staticmethod
    def result(environment: str) -> str:
        return f"tentalis.ev.result.{environment}"

    @staticmethod
    def score(environment: str) -> str:
        return f"tentalis.ev.score.{environment}"

    @staticmethod
    def feedback(environment: str) -> str:
        return f"tentalis.ev.feedback.{environment}"


class Event(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: str
    schema_version: str = SCHEMA_VERSION
    event_id: str = Field(default_factory=new_id)
    task_id: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    source: str = Field(default="", description="Id of the service that produced the event.")

    def subject(self) -> str:  # pragma: no cover - every concrete event overrides
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class TaskEvent(Event):
    """A unit of work for a worker of one environment."""

    kind: Literal["task"] = "task"
    task_id: str = Field(default_factory=new_id)
    environment: str = "math"
    prompt: str
    answer: str | None = Field(default=None, description="Ground truth, never shown to workers.")
    metadata: dict[str, Any] = Field(default_factory=dict)
    request_id: str | None = None
    group_id: str | None = Field(default=None, description="Rollout group: G samples, one prompt.")
    sample_index: int = 0
    split: str = "adhoc"
    adapter: str | None = Field(default=None, description="Adapter to answer with; None = default.")
    max_new_tokens: int | None = None
    temperature: float | None = None

    def subject(self) -> str:
        return Subjects.task(self.environment)


ParseStatus = Literal["ok", "no_steps", "no_answer", "empty", "error"]


class ResultEvent(Event):
    """A worker's answer: the raw text, its parsed ``<step>`` list and final answer."""

    kind: Literal["result"] = "result"
    task_id: str
    task: TaskEvent = Field(description="The task answered, so scoring needs no lookup.")
    environment: str = "math"
    worker_id: str
    raw_text: str
    steps: list[str] = Field(default_factory=list)
    final_answer: str | None = None
    parse_status: ParseStatus = "ok"
    error: str | None = Field(default=None, description="Failure at a boundary, kept as data.")
    adapter: str | None = None
    session_event_id: str | None = None
    latency_s: float = 0.0
    prompt_token_ids: list[int] | None = None
    completion_token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    finish_reason: str | None = None

    @property
    def task_event_id(self) -> str:
        return self.task.event_id

    def subject(self) -> str:
        return Subjects.result(self.environment)


class ScoreEvent(Event):
    """One score per step plus an outcome score, each in [0, 1]."""

    kind: Literal["score"] = "score"
    task_id: str
    result: ResultEvent = Field(description="The result scored (with its task).")
    environment: str = "math"
    scorer: str
    step_scores: list[float] = Field(default_factory=list)
    outcome_score: float = Field(ge=0.0, le=1.0)
    components: dict[str, float] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None

    @property
    def result_event_id(self) -> str:
        return self.result.event_id

    def subject(self) -> str:
        return Subjects.score(self.environment)


FeedbackKind = Literal["review", "timeout", "score", "thumbs", "critique", "edit"]


class FeedbackEvent(Event):
    """A manager's (or a person's) verdict on a result: a score and textual feedback."""

    kind: Literal["feedback"] = "feedback"
    task_id: str
    result_event_id: str | None = None
    environment: str = "math"
    manager_id: str = ""
    feedback_kind: FeedbackKind = "review"
    score: float | None = Field(default=None, ge=0.0, le=1.0)
    feedback: str = ""
    edited_answer: str | None = None
    session_id: str | None = Field(
        default=None, description="Set when the feedback is on a proxied session."
    )
    session_event_id: str | None = Field(default=None, description="The session turn judged.")

    def subject(self) -> str:
        return Subjects.feedback(self.environment)


class SessionEvent(Event):
    """One LLM call: what went in, what came out, and how."""

    kind: Literal["session"] = "session"
    session_id: str
    turn_index: int = 0
    trainable: bool = Field(
        default=True, description="A main turn that succeeded: training data.")
    turn_type: Literal["main", "side"] = Field(
        default="main", description="`side`: a helper call (summary, title, compaction) the "
        "client or a proxy rule marked; recorded, never trained on or linked.")
    messages: list[dict[str, Any]]
    completion: str
    prompt_token_ids: list[int] | None = Field(
        default=None, description="The prompt tokens exactly as the backend used them; "
        "None when the backend returned none.")
    completion_token_ids: list[int] | None = Field(
        default=None, description="The completion's tokens as the backend returned them.")
    logprobs: list[float] | None = Field(
        default=None, description="The backend's log-probability of each completion token.")
    finish_reason: str | None = None
    latency_s: float = 0.0
    model: str = ""
    adapter: str | None = None
    worker_id: str | None = None
    next_state: dict[str, Any] | None = Field(
        default=None, description="What followed this turn (next user message, tool result)."
    )

    def subject(self) -> str:
        return Subjects.SESSION


class SessionLinkEvent(Event):
    """What followed one session turn (its *next state*), published once it is known.

    A turn is published the moment it is answered, before anything follows it; when the
    session's next call arrives, this event links the earlier turn to the messages that
    came after its completion (next user message, tool result or error).
    """

    kind: Literal["session_link"] = "session_link"
    session_id: str
    session_event_id: str = Field(description="The SessionEvent this completes.")
    turn_index: int
    next_event_id: str | None = Field(default=None, description="The turn that followed.")
    next_state: dict[str, Any]

    def subject(self) -> str:
        return Subjects.SESSION_LINK


class ModelUpdateEvent(Event):
    """A new adapter version is ready; workers (or one target worker) load it."""

    kind: Literal["model_update"] = "model_update"
    adapter_name: str
    version: int = Field(ge=0)
    sha256: str
    path: str
    base_model: str = ""
    target_worker: str | None = None
    step: int | None = None
    metrics: dict[str, float] = Field(default_factory=dict)

    def subject(self) -> str:
        return Subjects.MODEL_UPDATE


class AdapterLoadedEvent(Event):
    """What a worker did with a ModelUpdateEvent: loaded it (and answers with it from now
    on) or refused it (``error`` says why). The adapter registry is built from these."""

    kind: Literal["adapter_loaded"] = "adapter_loaded"
    worker_id: str
    adapter_name: str
    version: int = Field(ge=0)
    sha256: str
    update_event_id: str
    previous_version: int | None = None
    error: str | None = None

    def subject(self) -> str:
        return Subjects.ADAPTER_LOADED


class DeadLetterEvent(Event):
    """A payload a consumer could not handle, kept with the reason."""

    kind: Literal["dead_letter"] = "dead_letter"
    original_subject: str
    consumer: str
    reason: str
    payload: str = Field(description="The payload, UTF-8 decoded with replacement.")
    num_delivered: int = 0
    stream_sequence: int | None = None

    def subject(self) -> str:
        return Subjects.DEAD_LETTER


GuardLevelName = Literal["warning", "hard_stop", "resumed"]


class GuardEvent(Event):
    """The reward-hacking guard's verdict on a trainer (WARNING, HARD_STOP), or an operator
    resuming that trainer's paused adapter promotion (``resumed``)."""

    kind: Literal["guard"] = "guard"
    trainer_id: str
    adapter_name: str = ""
    level: GuardLevelName
    signals: list[str] = Field(default_factory=list, description="The signals that fired.")
    reason: str
    numbers: dict[str, float] = Field(default_factory=dict, description="What triggered it.")
    step: int | None = None
    observations: int = 0

    def subject(self) -> str:
        return Subjects.GUARD


AnyEvent = Annotated[
    TaskEvent
    | ResultEvent
    | ScoreEvent
    | FeedbackEvent
    | SessionEvent
    | SessionLinkEvent
    | ModelUpdateEvent
    | AdapterLoadedEvent
    | DeadLetterEvent
    | GuardEvent,
    Field(discriminator="kind"),
]
_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyEvent)
EVENT_KINDS = (
    "task", "result", "score", "feedback", "session", "session_link", "model_update",
    "adapter_loaded", "dead_letter", "guard",
)


def decode_event(data: bytes | str) -> Event:
    """Parse a payload into its event model, or raise :class:`EventDecodeError`."""
    try:
        event: Event = _ADAPTER.validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        raise EventDecodeError(f"invalid event at '{loc}': {first.get('msg')}") from None
    major = event.schema_version.split(".")[0]
    if major != SCHEMA_MAJOR:
        raise EventDecodeError(
            f"schema_version {event.schema_version} is not supported "
            f"(this build reads {SCHEMA_MAJOR}.x)"
        )
    return event
