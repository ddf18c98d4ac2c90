"""The experience store: a SQLite ledger of every event, idempotent by ``event_id``."""

from tentalis.store.records import RolloutRow, TaskSummary, TaskView
from tentalis.store.schema import SCHEMA_VERSION
from tentalis.store.sqlite import ExperienceStore

__all__ = ["SCHEMA_VERSION", "ExperienceStore", "RolloutRow", "TaskSummary", "TaskView"]
