"""Typed rows by column name: the schema and the event models cannot drift apart."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

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
from tentalis.store import ExperienceStore, rows, schema
from tentalis.store.rows import LEDGER_ONLY, TYPED_TABLES, TypedTable, column_value, table_columns


def drift(table: TypedTable) -> list[str]:
    """What one side has and the other lacks, for one typed table."""
    columns = set(table_columns()[table.name])
    fields = set(table.event.model_fields)
    properties = {n for n in dir(table.event) if isinstance(getattr(table.event, n), property)}
    problems = [f"column {c} names no field of {table.event.__name__}"
                for c in sorted(columns - fields - properties)]
    problems += [f"field {f} of {table.event.__name__} is no column of {table.name} "
                 "(nor named payload-only)"
                 for f in sorted(fields - columns - LEDGER_ONLY - table.payload_only)]
    problems += [f"payload-only {f} is no field of {table.event.__name__}, or is a column"
                 for f in sorted(table.payload_only - (fields - columns))]
    return problems  # fmt: skip


@pytest.mark.parametrize("table", TYPED_TABLES, ids=lambda t: t.name)
def test_every_column_is_a_field_and_every_field_a_column(table: TypedTable) -> None:
    assert drift(table) == []


@pytest.fixture
def fresh_schema():
    """Lets a test change the migrations; the column cache is rebuilt before and after."""
    rows.table_columns.cache_clear()
    rows.insert_sql.cache_clear()
    yield
    rows.table_columns.cache_clear()
    rows.insert_sql.cache_clear()


def test_a_column_added_to_the_schema_alone_is_caught(monkeypatch, fresh_schema) -> None:
    extra = "ALTER TABLE tasks ADD COLUMN priority INTEGER"
    monkeypatch.setattr(rows, "MIGRATIONS", (*schema.MIGRATIONS, extra))
    [tasks] = [t for t in TYPED_TABLES if t.name == "tasks"]
    assert drift(tasks) == ["column priority names no field of TaskEvent"]


def test_a_field_added_to_the_model_alone_is_caught(fresh_schema) -> None:
    class TaskWithPriority(TaskEvent):
        priority: int = 0

    table = TypedTable("tasks", TaskWithPriority, TYPED_TABLES[0].payload_only)
    assert drift(table) == [
        "field priority of TaskWithPriority is no column of tasks (nor named payload-only)"
    ]


def _samples() -> list[Event]:
    task = TaskEvent(prompt="2+3?", answer="5", group_id="g", sample_index=1, split="train")
    result = ResultEvent(task_id=task.task_id, task=task, worker_id="w", raw_text="5",
                         steps=["a", "b"], final_answer="5", prompt_token_ids=[1, 2],
                         logprobs=[-0.5], latency_s=0.25)
    return [
        task,
        result,
        ScoreEvent(task_id=task.task_id, result=result, scorer="math", step_scores=[1.0, 0.0],
                   outcome_score=1.0, components={"verifier": 1.0}),
        FeedbackEvent(task_id=task.task_id, score=0.5, feedback="ok", session_id="s"),
        SessionEvent(session_id="s", messages=[{"role": "user", "content": "hi"}],
                     completion="yo", trainable=False, completion_token_ids=[3]),
        SessionLinkEvent(session_id="s", session_event_id="e", turn_index=0,
                         next_state={"role": "user"}),
        ModelUpdateEvent(adapter_name="a", version=2, sha256="ab", path="/p", step=3),
        DeadLetterEvent(original_subject="x", consumer="c", reason="r", payload="{",
                        num_delivered=2, stream_sequence=7),
        GuardEvent(trainer_id="t", level="warning", signals=["kl"], reason="why"),
    ]  # fmt: skip


def test_each_typed_row_holds_its_events_fields_by_name(tmp_path: Path) -> None:
    samples = _samples()
    assert {type(e) for e in samples} == {t.event for t in TYPED_TABLES}
    with ExperienceStore(tmp_path / "exp.db") as store:
        store.append(samples)
    conn = sqlite3.connect(tmp_path / "exp.db")
    conn.row_factory = sqlite3.Row
    for event in samples:
        [table] = [t for t in TYPED_TABLES if isinstance(event, t.event)]
        [row] = conn.execute(f"SELECT * FROM {table.name} WHERE event_id = ?", (event.event_id,))
        columns = table_columns()[table.name]
        assert dict(row) == {c: column_value(getattr(event, c)) for c in columns}
    conn.close()
