"""The typed rows of an event: which table holds each kind, filled column by column name.

A typed table's column is the event field (or property) of the same name, encoded for
SQLite by its value: lists and dicts as JSON, booleans as 0/1, datetimes as UTC ISO-8601.
The column lists come from the schema itself (:func:`table_columns`), so adding a column is
one edit on each side: a migration in :mod:`tentalis.store.schema` and the field on the
event model. Fields kept in the ledger payload only are named in ``payload_only``; a test
checks that every field is a column or named there, and that every column names a field.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tentalis.events import (
    DeadLetterEvent,
    Event,
    FeedbackEvent,
    GuardEvent,
    ModelUpdateEvent,
    ResultEvent,
    ScoreEvent,
    SessionEvent,
    SessionLinkEvent,
    TaskEvent,
)
from tentalis.store.schema import MIGRATIONS

# Every event has these; the ledger row (``events``) holds them.
LEDGER_ONLY = frozenset({"kind", "schema_version", "source"})


@dataclass(frozen=True)
class TypedTable:
    """The table holding one event kind, and the fields it leaves to the ledger payload."""

    name: str
    event: type[Event]
    payload_only: frozenset[str] = frozenset()


TYPED_TABLES: tuple[TypedTable, ...] = (
    TypedTable("tasks", TaskEvent, frozenset({"metadata", "max_new_tokens", "temperature"})),
    # a result's task is an event of its own; its steps are rows of ``steps``
    TypedTable("results", ResultEvent, frozenset({"task", "steps"})),
    # a score's result is an event of its own; its step scores are rows of ``step_scores``
    TypedTable("scores", ScoreEvent, frozenset({"result", "step_scores", "details"})),
    TypedTable("feedback", FeedbackEvent),
    TypedTable("sessions", SessionEvent, frozenset({"messages", "next_state"})),
    TypedTable("session_links", SessionLinkEvent, frozenset({"task_id"})),
    TypedTable("adapter_versions", ModelUpdateEvent, frozenset({"task_id", "metrics"})),
    TypedTable("dead_letters", DeadLetterEvent),
    TypedTable("guard_events", GuardEvent, frozenset({"task_id", "numbers", "observations"})),
)


def timestamp(dt: datetime) -> str:
    """UTC ISO-8601 with microseconds: string order is time order. Naive means UTC."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat(timespec="microseconds")


def column_value(value: Any) -> Any:
    """An event field's value as SQLite stores it."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


@functools.cache
def table_columns() -> dict[str, tuple[str, ...]]:
    """Every table's columns in schema order, as the migrations leave them."""
    conn = sqlite3.connect(":memory:")
    try:
        for migration in MIGRATIONS:
            conn.executescript(migration)
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            t: tuple(r[1] for r in conn.execute(f"PRAGMA table_info({t})")) for t in tables
        }
    finally:
        conn.close()


@functools.cache
def insert_sql(table: str) -> str:
    """``INSERT INTO table (a, b, …) VALUES (:a, :b, …)`` over every column of ``table``."""
    columns = table_columns()[table]
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) "
        f"VALUES ({', '.join(':' + c for c in columns)})"
    )


def row_params(table: str, event: Event) -> dict[str, Any]:
    """The named parameters of ``event``'s row in ``table``: each column from its field."""
    return {c: column_value(getattr(event, c)) for c in table_columns()[table]}


def typed_table(event: Event) -> TypedTable | None:
    """The table that holds ``event``'s kind; None for kinds kept in the ledger only."""
    for table in TYPED_TABLES:
        if isinstance(event, table.event):
            return table
    return None


def insert_typed(conn: sqlite3.Connection, event: Event) -> None:
    """The typed rows of a new event (its child rows included); unknown kinds: none."""
    table = typed_table(event)
    if table is None:
        return
    conn.execute(insert_sql(table.name), row_params(table.name, event))
    if isinstance(event, ResultEvent):
        conn.executemany(
            "INSERT INTO steps (result_event_id, idx, text) VALUES (:id, :idx, :text)",
            [{"id": event.event_id, "idx": i, "text": t} for i, t in enumerate(event.steps)],
        )
    elif isinstance(event, ScoreEvent):
        conn.executemany(
            "INSERT INTO step_scores (score_event_id, idx, score) VALUES (:id, :idx, :score)",
            [{"id": event.event_id, "idx": i, "score": s} for i, s in enumerate(event.step_scores)],
        )
