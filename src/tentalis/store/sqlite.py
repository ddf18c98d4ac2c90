"""``ExperienceStore``: the SQLite ledger of every event, idempotent by ``event_id``.

One file in WAL mode (readers never block the writer; ``synchronous=NORMAL`` is durable
across application crashes, and a power loss can lose at most the last transactions).
Each store object owns one connection guarded by a lock, so it may be shared between
threads: the recorder service calls it through ``asyncio.to_thread``. Several processes may
open the same file; writers wait up to ``busy_timeout_s`` for each other.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from tentalis.errors import StoreError
from tentalis.events import (
    EVENT_KINDS,
    DeadLetterEvent,
    Event,
    FeedbackEvent,
    ModelUpdateEvent,
    ResultEvent,
    ScoreEvent,
    SessionEvent,
    TaskEvent,
    decode_event,
    utcnow,
)
from tentalis.store.records import RolloutRow, TaskSummary, TaskView
from tentalis.store.rows import insert_typed, timestamp
from tentalis.store.schema import migrate

Params = Sequence[Any] | dict[str, Any]

_CHUNK = 500  # ids per IN (...) clause, well under SQLite's variable limit


def _json_list(value: str | None) -> list | None:
    return json.loads(value) if value else None


def _chunks(ids: Sequence[str]) -> Iterator[tuple[str, Sequence[str]]]:
    for i in range(0, len(ids), _CHUNK):
        part = ids[i : i + _CHUNK]
        yield ",".join("?" * len(part)), part


class ExperienceStore:
    """Append events, query rollouts. ``ExperienceStore(path)`` creates or migrates the file."""

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_s
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open experience store {self.path}: {exc}") from exc
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            migrate(self._conn, str(self.path))
            self._conn.row_factory = sqlite3.Row  # columns by name: row["task_id"]
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreError(f"cannot open experience store {self.path}: {exc}") from exc
        except BaseException:
            self._conn.close()
            raise

    # --- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> ExperienceStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"experience store {self.path}: query failed: {exc}") from exc

    # --- writing -----------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT, rolled back on error)."""
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"experience store {self.path}: write failed: {exc}") from exc
                raise

    def read(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        """Run a read-only query (for the store's companion modules); rows index by column
        name or position."""
        return self._query(sql, params)

    def append(self, events: Sequence[Event]) -> int:
        """Record a batch in one transaction; return how many of ``events`` were new.

        An event whose ``event_id`` is already recorded (earlier, or earlier in this batch)
        is skipped: no ledger row, no typed rows. Events carried inside others (the task
        in a ResultEvent, the result in a ScoreEvent) are recorded too, under their own
        ids, so a result is never without its task; they do not count towards the return
        value. Either the whole batch is recorded or, on error, none of it (StoreError).
        """
        if not events:
            return 0
        recorded_at = timestamp(utcnow())
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                new = sum(_insert(conn, event, recorded_at) for event in events)
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"experience store {self.path}: append failed: {exc}") from exc
                raise
        return new

    # --- reading -----------------------------------------------------------------------

    def get(self, event_id: str) -> Event | None:
        """The recorded event with this id, or None."""
        rows = self._query("SELECT payload FROM events WHERE event_id = ?", (event_id,))
        return decode_event(rows[0][0]) if rows else None

    def counts(self) -> dict[str, int]:
        """Events per kind (every known kind, zero included) and ``total``."""
        counts = dict.fromkeys(EVENT_KINDS, 0)
        for kind, n in self._query("SELECT kind, COUNT(*) FROM events GROUP BY kind"):
            counts[kind] = n
        counts["total"] = sum(counts.values())
        return counts

    def task_view(self, task_id: str) -> TaskView | None:
        """The task, its results (with steps), scores, feedback and sessions; None if the
        store knows nothing of ``task_id``."""
        rows = self._query(
            "SELECT payload FROM events WHERE task_id = ? ORDER BY created_at, event_id",
            (task_id,),
        )
        if not rows:
            return None
        events = [decode_event(r[0]) for r in rows]
        results = [e for e in events if isinstance(e, ResultEvent)]
        sessions = [e for e in events if isinstance(e, SessionEvent)]
        missing = [
            r.session_event_id
            for r in results
            if r.session_event_id and r.session_event_id not in {s.event_id for s in sessions}
        ]
        for marks, ids in _chunks(missing):
            found = self._query(f"SELECT payload FROM events WHERE event_id IN ({marks})", ids)
            sessions += [decode_event(r[0]) for r in found]  # type: ignore[misc]
        tasks = [e for e in events if isinstance(e, TaskEvent)]
        return TaskView(
            task_id=task_id,
            task=tasks[0] if tasks else None,
            results=results,
            scores=[e for e in events if isinstance(e, ScoreEvent)],
            feedback=[e for e in events if isinstance(e, FeedbackEvent)],
            sessions=sessions,
        )

    def recent_tasks(self, limit: int = 20) -> list[TaskSummary]:
        """The latest tasks, newest first (a task recorded twice is listed once)."""
        rows = self._query(
            """
            SELECT t.task_id AS task_id, t.environment AS environment, t.prompt AS prompt,
                   t.split AS split, t.created_at AS created_at,
                   (SELECT COUNT(*) FROM results r WHERE r.task_id = t.task_id) AS num_results,
                   (SELECT AVG(s.outcome_score) FROM scores s WHERE s.task_id = t.task_id)
                     AS mean_outcome,
                   (SELECT f.score FROM feedback f WHERE f.task_id = t.task_id
                     ORDER BY f.created_at DESC, f.event_id DESC LIMIT 1) AS feedback_score
            FROM (SELECT task_id, environment, prompt, split, MIN(created_at) AS created_at
                  FROM tasks GROUP BY task_id) AS t
            ORDER BY t.created_at DESC, t.task_id LIMIT :limit
            """,
            {"limit": limit},
        )
        return [
            TaskSummary(**(dict(r) | {"created_at": datetime.fromisoformat(r["created_at"])}))
            for r in rows
        ]

    def feedback_for(self, task_ids: Iterable[str]) -> dict[str, FeedbackEvent]:
        """The latest feedback of each task that has any."""
        out: dict[str, FeedbackEvent] = {}
        for marks, ids in _chunks(list(dict.fromkeys(task_ids))):
            rows = self._query(
                f"""SELECT f.task_id, e.payload FROM feedback f
                    JOIN events e ON e.event_id = f.event_id
                    WHERE f.task_id IN ({marks}) ORDER BY f.created_at, f.event_id""",
                ids,
            )
            for task_id, payload in rows:
                out[task_id] = decode_event(payload)  # type: ignore[assignment]
        return out

    def dead_letters(self, limit: int = 50) -> list[DeadLetterEvent]:
        """The latest dead letters, newest first."""
        rows = self._query(
            """SELECT e.payload FROM dead_letters d JOIN events e ON e.event_id = d.event_id
               ORDER BY d.created_at DESC, d.event_id LIMIT ?""",
            (limit,),
        )
        return [decode_event(r[0]) for r in rows]  # type: ignore[misc]

    def adapter_versions(self, name: str | None = None) -> list[ModelUpdateEvent]:
        """Published adapter versions (of ``name``, or all), by name then version."""
        rows = self._query(
            """SELECT e.payload FROM adapter_versions a JOIN events e ON e.event_id = a.event_id
               WHERE :name IS NULL OR a.adapter_name = :name
               ORDER BY a.adapter_name, a.version, a.created_at""",
            {"name": name},
        )
        return [decode_event(r[0]) for r in rows]  # type: ignore[misc]

    def results_with_scores(
        self,
        split: str | None = None,
        since: datetime | None = None,
        *,
        scorer: str | None = None,
    ) -> list[RolloutRow]:
        """Every (result, score) pair, with its task and token ids and logprobs (the
        result's own, else its session's), oldest result first.

        ``split`` filters on the task's split, ``since`` on the result's ``created_at``
        (inclusive), ``scorer`` on the scorer name. A result scored by two scorers gives two
        rows; an unscored result gives none.
        """
        rows = self._query(
            """
            SELECT t.task_id AS task_id, t.event_id AS task_event_id,
                   t.environment AS environment, t.split AS split, t.group_id AS group_id,
                   t.sample_index AS sample_index, t.prompt AS prompt, t.answer AS answer,
                   r.event_id AS result_event_id, r.worker_id AS worker_id,
                   r.raw_text AS raw_text, r.final_answer AS final_answer,
                   r.parse_status AS parse_status, r.error AS result_error,
                   r.adapter AS adapter, s.event_id AS score_event_id, s.scorer AS scorer,
                   s.outcome_score AS outcome_score, s.components AS components,
                   r.session_event_id AS session_event_id,
                   COALESCE(r.prompt_token_ids, ss.prompt_token_ids) AS prompt_token_ids,
                   COALESCE(r.completion_token_ids, ss.completion_token_ids)
                     AS completion_token_ids,
                   COALESCE(r.logprobs, ss.logprobs) AS logprobs, r.created_at AS created_at
            FROM results r
            JOIN tasks t ON t.event_id = r.task_event_id
            JOIN scores s ON s.result_event_id = r.event_id
            LEFT JOIN sessions ss ON ss.event_id = r.session_event_id
            WHERE (:split IS NULL OR t.split = :split)
              AND (:since IS NULL OR r.created_at >= :since)
              AND (:scorer IS NULL OR s.scorer = :scorer)
            ORDER BY r.created_at, r.event_id, s.created_at, s.event_id
            """,
            {"split": split, "since": timestamp(since) if since is not None else None,
             "scorer": scorer},
        )  # fmt: skip
        ids = [r["result_event_id"] for r in rows]
        steps = self._grouped("steps", "result_event_id", "text", ids)
        score_ids = [r["score_event_id"] for r in rows]
        step_scores = self._grouped("step_scores", "score_event_id", "score", score_ids)
        return [
            RolloutRow(**(dict(r) | {
                "steps": steps.get(r["result_event_id"], []),
                "step_scores": step_scores.get(r["score_event_id"], []),
                "components": json.loads(r["components"]),
                "prompt_token_ids": _json_list(r["prompt_token_ids"]),
                "completion_token_ids": _json_list(r["completion_token_ids"]),
                "logprobs": _json_list(r["logprobs"]),
                "created_at": datetime.fromisoformat(r["created_at"]),
            }))
            for r in rows
        ]  # fmt: skip

    def duplicate_results(self) -> int:
        """How many task ids have more than one recorded result (should be 0 when every
        task is sampled once and redeliveries reuse the result's event id)."""
        return self._query(
            "SELECT COUNT(*) FROM (SELECT task_id FROM results GROUP BY task_id "
            "HAVING COUNT(*) > 1)"
        )[0][0]

    def _grouped(self, table: str, key: str, column: str, ids: list[str]) -> dict[str, list]:
        """``{id: [column values in idx order]}`` for a child table keyed by ``key``."""
        out: dict[str, list] = {}
        for marks, part in _chunks(list(dict.fromkeys(ids))):
            rows = self._query(
                f"SELECT {key}, {column} FROM {table} WHERE {key} IN ({marks}) ORDER BY {key}, idx",
                part,
            )
            for row in rows:
                out.setdefault(row[key], []).append(row[column])
        return out


def _insert(conn: sqlite3.Connection, event: Event, recorded_at: str) -> bool:
    """Record ``event`` (and the events it carries) unless known; True if it was new."""
    if isinstance(event, ResultEvent):
        _insert(conn, event.task, recorded_at)
    elif isinstance(event, ScoreEvent):
        _insert(conn, event.result, recorded_at)
    try:
        subject: str | None = event.subject()
    except NotImplementedError:
        subject = None
    cursor = conn.execute(
        "INSERT OR IGNORE INTO events (event_id, kind, task_id, subject, created_at,"
        " recorded_at, payload) VALUES (:event_id, :kind, :task_id, :subject, :created_at,"
        " :recorded_at, :payload)",
        {"event_id": event.event_id, "kind": event.kind, "task_id": event.task_id,
         "subject": subject, "created_at": timestamp(event.created_at),
         "recorded_at": recorded_at, "payload": event.model_dump_json()},
    )  # fmt: skip
    if cursor.rowcount != 1:
        return False
    insert_typed(conn, event)  # the typed rows (store.rows); unknown kinds: ledger only
    return True
