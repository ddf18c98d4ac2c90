"""tentalis: LLM agents that learn from feedback."""

from tentalis.config import Settings, load_settings
from tentalis.events import (
    DeadLetterEvent,
    Event,
    FeedbackEvent,
    ModelUpdateEvent,
    ResultEvent,
    ScoreEvent,
    SessionEvent,
    Subjects,
    TaskEvent,
    decode_event,
)

__version__ = "0.1.0"

__all__ = [
    "DeadLetterEvent",
    "Event",
    "FeedbackEvent",
    "ModelUpdateEvent",
    "ResultEvent",
    "ScoreEvent",
    "SessionEvent",
    "Settings",
    "Subjects",
    "TaskEvent",
    "__version__",
    "decode_event",
    "load_settings",
]
