"""The experience store's SQLite schema and its migrations.

``events`` is the ledger: every event, verbatim (``payload`` is the event's JSON), keyed by
``event_id``. The typed tables hold the same events as columns for queries and are written
in the same transaction as the ledger row. Timestamps are UTC ISO-8601 strings with
microseconds, so string order is time order.

``MIGRATIONS[i]`` takes a database at version ``i`` to version ``i + 1``; a new migration is
appended, never edited.
"""

from __future__ import annotations

import sqlite3

from tentalis.errors import StoreError

_V1 = """
CREATE TABLE events (
    event_id    TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    task_id     TEXT,
    subject     TEXT,
    created_at  TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    payload     TEXT NOT NULL
);
CREATE INDEX events_kind ON events (kind, created_at);
CREATE INDEX events_task ON events (task_id);

CREATE TABLE tasks (
    event_id     TEXT PRIMARY KEY REFERENCES events (event_id),
    task_id      TEXT NOT NULL,
    environment  TEXT NOT NULL,
    prompt       TEXT NOT NULL,
    answer       TEXT,
    split        TEXT NOT NULL,
    group_id     TEXT,
    sample_index INTEGER NOT NULL,
    adapter      TEXT,
    request_id   TEXT,
    created_at   TEXT NOT NULL
);
CREATE INDEX tasks_task ON tasks (task_id);
CREATE INDEX tasks_created ON tasks (created_at);

CREATE TABLE results (
    event_id         TEXT PRIMARY KEY REFERENCES events (event_id),
    task_id          TEXT NOT NULL,
    task_event_id    TEXT NOT NULL,
    environment      TEXT NOT NULL,
    worker_id        TEXT NOT NULL,
    raw_text         TEXT NOT NULL,
    final_answer     TEXT,
    parse_status     TEXT NOT NULL,
    error            TEXT,
    adapter          TEXT,
    session_event_id TEXT,
    latency_s        REAL NOT NULL,
    prompt_token_ids     TEXT,
    completion_token_ids TEXT,
    logprobs             TEXT,
    finish_reason        TEXT,
    created_at       TEXT NOT NULL
);
CREATE INDEX results_task ON results (task_id);

CREATE TABLE steps (
    result_event_id TEXT NOT NULL REFERENCES results (event_id),
    idx             INTEGER NOT NULL,
    text            TEXT NOT NULL,
    PRIMARY KEY (result_event_id, idx)
);

CREATE TABLE scores (
    event_id        TEXT PRIMARY KEY REFERENCES events (event_id),
    task_id         TEXT NOT NULL,
    result_event_id TEXT NOT NULL,
    environment     TEXT NOT NULL,
    scorer          TEXT NOT NULL,
    outcome_score   REAL NOT NULL,
    components      TEXT NOT NULL,
    error           TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX scores_result ON scores (result_event_id);
CREATE INDEX scores_task ON scores (task_id);

CREATE TABLE step_scores (
    score_event_id TEXT NOT NULL REFERENCES scores (event_id),
    idx            INTEGER NOT NULL,
    score          REAL NOT NULL,
    PRIMARY KEY (score_event_id, idx)
);

CREATE TABLE feedback (
    event_id        TEXT PRIMARY KEY REFERENCES events (event_id),
    task_id         TEXT NOT NULL,
    result_event_id TEXT,
    environment     TEXT NOT NULL,
    manager_id      TEXT NOT NULL,
    feedback_kind   TEXT NOT NULL,
    score           REAL,
    feedback        TEXT NOT NULL,
    edited_answer   TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX feedback_task ON feedback (task_id, created_at);

CREATE TABLE sessions (
    event_id             TEXT PRIMARY KEY REFERENCES events (event_id),
    session_id           TEXT NOT NULL,
    task_id              TEXT,
    turn_index           INTEGER NOT NULL,
    trainable            INTEGER NOT NULL,
    model                TEXT NOT NULL,
    adapter              TEXT,
    worker_id            TEXT,
    completion           TEXT NOT NULL,
    prompt_token_ids     TEXT,
    completion_token_ids TEXT,
    logprobs             TEXT,
    finish_reason        TEXT,
    latency_s            REAL NOT NULL,
    created_at           TEXT NOT NULL
);
CREATE INDEX sessions_session ON sessions (session_id, turn_index);

CREATE TABLE adapter_versions (
    event_id      TEXT PRIMARY KEY REFERENCES events (event_id),
    adapter_name  TEXT NOT NULL,
    version       INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    path          TEXT NOT NULL,
    base_model    TEXT NOT NULL,
    target_worker TEXT,
    step          INTEGER,
    created_at    TEXT NOT NULL
);
CREATE INDEX adapter_versions_name ON adapter_versions (adapter_name, version);

CREATE TABLE dead_letters (
    event_id         TEXT PRIMARY KEY REFERENCES events (event_id),
    task_id          TEXT,
    original_subject TEXT NOT NULL,
    consumer         TEXT NOT NULL,
    reason           TEXT NOT NULL,
    payload          TEXT NOT NULL,
    num_delivered    INTEGER NOT NULL,
    stream_sequence  INTEGER,
    created_at       TEXT NOT NULL
);
CREATE INDEX dead_letters_created ON dead_letters (created_at);
"""

_V2 = """
CREATE TABLE training_checkpoints (
    trainer_id      TEXT NOT NULL,
    step            INTEGER NOT NULL,
    path            TEXT NOT NULL,
    adapter_name    TEXT NOT NULL,
    adapter_version INTEGER,
    adapter_sha256  TEXT,
    metrics         TEXT,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (trainer_id, step)
);
CREATE TABLE training_consumed (
    rollout_id  TEXT PRIMARY KEY,
    trainer_id  TEXT NOT NULL,
    step        INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX training_consumed_step ON training_consumed (trainer_id, step);
"""

# v3: feedback on proxied sessions; the links from a session turn to its next state
_V3 = """
ALTER TABLE feedback ADD COLUMN session_id TEXT;
ALTER TABLE feedback ADD COLUMN session_event_id TEXT;
CREATE INDEX feedback_session ON feedback (session_id, created_at);

CREATE TABLE session_links (
    event_id         TEXT PRIMARY KEY REFERENCES events (event_id),
    session_id       TEXT NOT NULL,
    session_event_id TEXT NOT NULL,
    turn_index       INTEGER NOT NULL,
    next_event_id    TEXT,
    next_state       TEXT NOT NULL,
    created_at       TEXT NOT NULL
);
CREATE INDEX session_links_turn ON session_links (session_event_id);
CREATE INDEX session_links_session ON session_links (session_id, turn_index);
"""

_V4 = """
CREATE TABLE guard_events (
    event_id     TEXT PRIMARY KEY REFERENCES events (event_id),
    trainer_id   TEXT NOT NULL,
    adapter_name TEXT NOT NULL,
    level        TEXT NOT NULL,
    signals      TEXT NOT NULL,
    reason       TEXT NOT NULL,
    step         INTEGER,
    created_at   TEXT NOT NULL
);
CREATE INDEX guard_events_trainer ON guard_events (trainer_id, created_at);
"""

# v5: a session turn's type (main or side); side turns recorded before it get theirs back
_V5 = """
ALTER TABLE sessions ADD COLUMN turn_type TEXT NOT NULL DEFAULT 'main';
UPDATE sessions SET turn_type = 'side'
    WHERE trainable = 0 AND (finish_reason IS NULL OR finish_reason NOT LIKE 'error:%');
CREATE INDEX sessions_created ON sessions (created_at);
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5)
SCHEMA_VERSION = len(MIGRATIONS)


def current_version(conn: sqlite3.Connection) -> int:
    """The schema version of an open database; 0 for a new one."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Bring the schema up to :data:`SCHEMA_VERSION`: every pending migration, in one
    transaction.

    The connection must be in autocommit mode (``isolation_level=None``).
    """
    conn.execute("BEGIN IMMEDIATE")  # one process migrates at a time
    try:
        version = current_version(conn)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"experience store {path} has schema version {version}, newer than this "
                f"build reads ({SCHEMA_VERSION}); upgrade tentalis or use another store"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[target - 1].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (target,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION
