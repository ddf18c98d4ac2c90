"""ExperienceStore: idempotent appends, typed rows, and the queries training reads."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tentalis.errors import StoreError
from tentalis.events import (
    DeadLetterEvent,
    FeedbackEvent,
    ModelUpdateEvent,
    ResultEvent,
    ScoreEvent,
    SessionEvent,
    TaskEvent,
)
from tentalis.store import SCHEMA_VERSION, ExperienceStore
from tentalis.store import sqlite as store_sqlite

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def make_task(prompt: str = "What is 2 + 3?", split: str = "train", **kw) -> TaskEvent:
    return TaskEvent(prompt=prompt, answer="5", split=split, **kw)


def make_result(task: TaskEvent, **kw) -> ResultEvent:
    fields = {
        "task_id": task.task_id,
        "task": task,
        "worker_id": "w1",
        "raw_text": "<step>2 + 3 = 5</step>\n<step>done</step>\nAnswer: 5",
        "steps": ["2 + 3 = 5", "done"],
        "final_answer": "5",
    }
    return ResultEvent(**(fields | kw))


def make_score(result: ResultEvent, **kw) -> ScoreEvent:
    fields = {
        "task_id": result.task_id,
        "result": result,
        "scorer": "math",
        "step_scores": [1.0, 0.5],
        "outcome_score": 1.0,
        "components": {"verifier": 1.0, "format": 1.0},
    }
    return ScoreEvent(**(fields | kw))


def make_session(task: TaskEvent, **kw) -> SessionEvent:
    fields = {
        "task_id": task.task_id,
        "session_id": task.task_id,
        "messages": [{"role": "user", "content": task.prompt}],
        "completion": "Answer: 5",
        "prompt_token_ids": [1, 2, 3],
        "completion_token_ids": [4, 5],
        "logprobs": [-0.1, -0.2],
    }
    return SessionEvent(**(fields | kw))


@pytest.fixture
def store(tmp_path: Path):
    with ExperienceStore(tmp_path / "exp.db") as s:
        yield s


def raw(store: ExperienceStore, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(store.path) as conn:
        return conn.execute(sql, params).fetchall()


# --- idempotency -----------------------------------------------------------------------


def test_same_event_twice_in_one_batch_is_recorded_once(store: ExperienceStore) -> None:
    task = make_task()
    assert store.append([task, task]) == 1
    assert store.counts()["task"] == 1
    assert raw(store, "SELECT COUNT(*) FROM tasks") == [(1,)]


def test_same_event_in_a_later_batch_is_ignored(store: ExperienceStore) -> None:
    task = make_task()
    result = make_result(task)
    assert store.append([task, result]) == 2
    assert store.append([task, result]) == 0
    assert store.counts()["total"] == 2
    assert raw(store, "SELECT COUNT(*) FROM steps") == [(2,)]


def test_idempotent_across_reopen(tmp_path: Path) -> None:
    task = make_task()
    with ExperienceStore(tmp_path / "exp.db") as s:
        assert s.append([task]) == 1
    with ExperienceStore(tmp_path / "exp.db") as s:
        assert s.append([task]) == 0
        assert s.counts()["task"] == 1


def test_empty_batch(store: ExperienceStore) -> None:
    assert store.append([]) == 0


def test_embedded_task_and_result_are_recorded(store: ExperienceStore) -> None:
    task = make_task()
    result = make_result(task)
    # only the score arrives: its result and the result's task are recorded too
    assert store.append([make_score(result)]) == 1
    counts = store.counts()
    assert (counts["task"], counts["result"], counts["score"]) == (1, 1, 1)
    # the task arriving later is not new
    assert store.append([task, result]) == 0


def test_failed_batch_leaves_nothing(store: ExperienceStore, monkeypatch) -> None:
    calls = 0
    original = store_sqlite.insert_typed

    def flaky(conn, event):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise sqlite3.IntegrityError("planted failure")
        original(conn, event)

    monkeypatch.setattr(store_sqlite, "insert_typed", flaky)
    with pytest.raises(StoreError, match="planted failure"):
        store.append([make_task("a"), make_task("b")])
    monkeypatch.undo()
    assert store.counts()["total"] == 0
    assert raw(store, "SELECT COUNT(*) FROM tasks") == [(0,)]


async def test_concurrent_appends_from_threads(store: ExperienceStore) -> None:
    batches = [[make_task(f"q{i}-{j}") for j in range(20)] for i in range(8)]
    shared = make_task("shared")
    new = await asyncio.gather(*(asyncio.to_thread(store.append, [*b, shared]) for b in batches))
    assert sum(new) == 8 * 20 + 1
    assert store.counts()["task"] == 161


# --- the file ---------------------------------------------------------------------------


def test_wal_mode_and_schema_version(store: ExperienceStore) -> None:
    assert raw(store, "PRAGMA journal_mode") == [("wal",)]
    assert raw(store, "SELECT MAX(version) FROM schema_version") == [(SCHEMA_VERSION,)]


def test_reopen_does_not_migrate_twice(tmp_path: Path) -> None:
    ExperienceStore(tmp_path / "exp.db").close()
    s = ExperienceStore(tmp_path / "exp.db")
    s.close()
    assert raw(s, "SELECT COUNT(*) FROM schema_version") == [(SCHEMA_VERSION,)]


def test_open_failure_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=str(tmp_path)):
        ExperienceStore(tmp_path)  # a directory
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"junk\.db"):
        ExperienceStore(junk)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "exp.db"
    ExperienceStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer"):
        ExperienceStore(path)


# --- typed rows -------------------------------------------------------------------------


def test_typed_rows(store: ExperienceStore) -> None:
    task = make_task(group_id="g1", sample_index=2)
    result = make_result(task, session_event_id="s-1", latency_s=0.5)
    score = make_score(result)
    feedback = FeedbackEvent(
        task_id=task.task_id, result_event_id=result.event_id, score=0.8, feedback="good"
    )
    session = make_session(task)
    update = ModelUpdateEvent(
        adapter_name="math", version=3, sha256="ab", path="/a", target_worker="w1"
    )
    dead = DeadLetterEvent(original_subject="x", consumer="recorder", reason="bad", payload="{")
    assert store.append([task, result, score, feedback, session, update, dead]) == 7

    sql = "SELECT task_id, prompt, answer, split, group_id, sample_index FROM tasks"
    assert raw(store, sql) == [(task.task_id, task.prompt, "5", "train", "g1", 2)]
    assert raw(
        store, "SELECT task_event_id, final_answer, parse_status, session_event_id FROM results"
    ) == [(task.event_id, "5", "ok", "s-1")]
    assert raw(store, "SELECT result_event_id, idx, text FROM steps ORDER BY idx") == [
        (result.event_id, 0, "2 + 3 = 5"),
        (result.event_id, 1, "done"),
    ]
    assert raw(store, "SELECT result_event_id, scorer, outcome_score FROM scores") == [
        (result.event_id, "math", 1.0)
    ]
    assert raw(store, "SELECT idx, score FROM step_scores ORDER BY idx") == [(0, 1.0), (1, 0.5)]
    assert raw(store, "SELECT task_id, score, feedback FROM feedback") == [
        (task.task_id, 0.8, "good")
    ]
    assert raw(store, "SELECT session_id, prompt_token_ids, logprobs FROM sessions") == [
        (task.task_id, "[1, 2, 3]", "[-0.1, -0.2]")
    ]
    sql = (
        "SELECT adapter_name, version, sha256, path, target_worker, event_id FROM adapter_versions"
    )
    assert raw(store, sql) == [("math", 3, "ab", "/a", "w1", update.event_id)]
    assert raw(store, "SELECT consumer, reason FROM dead_letters") == [("recorder", "bad")]
    assert raw(store, "SELECT kind, subject FROM events WHERE event_id = ?", (task.event_id,)) == [
        ("task", "tentalis.ev.task.math")
    ]


def test_get_returns_the_event(store: ExperienceStore) -> None:
    task = make_task()
    store.append([task])
    assert store.get(task.event_id) == task
    assert store.get("missing") is None


# --- queries ----------------------------------------------------------------------------


def test_counts_every_kind(store: ExperienceStore) -> None:
    task = make_task()
    result = make_result(task)
    store.append(
        [
            task,
            result,
            make_score(result),
            make_session(task),
            FeedbackEvent(task_id=task.task_id, score=1.0),
            ModelUpdateEvent(adapter_name="a", version=1, sha256="x", path="/p"),
            DeadLetterEvent(original_subject="s", consumer="c", reason="r", payload=""),
        ]
    )
    counts = store.counts()
    for kind in ("task", "result", "score", "feedback", "session", "model_update", "dead_letter"):
        assert counts[kind] == 1, kind
    assert counts["total"] == 7
    assert "dead_letters" not in counts  # the dead_letter kind, counted once


def test_task_view_joins_everything(store: ExperienceStore) -> None:
    task = make_task()
    session = make_session(task, task_id=None)  # found through the result, not the task id
    result = make_result(task, session_event_id=session.event_id, created_at=at(1))
    score = make_score(result, created_at=at(2))
    feedback = FeedbackEvent(
        task_id=task.task_id, result_event_id=result.event_id, score=1.0, created_at=at(3)
    )
    other = make_task("another")
    store.append([task, session, result, score, feedback, other])

    view = store.task_view(task.task_id)
    assert view is not None
    assert view.task == task
    assert [r.event_id for r in view.results] == [result.event_id]
    assert view.results[0].steps == ["2 + 3 = 5", "done"]
    assert view.scores == [score]
    assert view.scores_for(result.event_id) == [score]
    assert view.feedback == [feedback]
    assert [s.event_id for s in view.sessions] == [session.event_id]
    assert store.task_view("nope") is None


def test_recent_tasks(store: ExperienceStore) -> None:
    old, new = make_task("old", created_at=at(1)), make_task("new", created_at=at(2))
    result = make_result(new)
    store.append(
        [
            old,
            new,
            result,
            make_score(result, outcome_score=0.5),
            FeedbackEvent(task_id=new.task_id, score=0.25),
        ]
    )
    listing = store.recent_tasks(10)
    assert [t.prompt for t in listing] == ["new", "old"]
    assert (listing[0].num_results, listing[0].mean_outcome, listing[0].feedback_score) == (
        1,
        0.5,
        0.25,
    )
    assert (listing[1].num_results, listing[1].mean_outcome, listing[1].feedback_score) == (
        0,
        None,
        None,
    )
    assert len(store.recent_tasks(1)) == 1


def test_feedback_for_returns_the_latest(store: ExperienceStore) -> None:
    a, b = make_task("a"), make_task("b")
    early = FeedbackEvent(task_id=a.task_id, score=0.1, created_at=at(1))
    late = FeedbackEvent(task_id=a.task_id, score=0.9, created_at=at(2))
    store.append([a, b, late, early])
    got = store.feedback_for([a.task_id, b.task_id, "unknown"])
    assert got == {a.task_id: late}


def test_dead_letters_and_adapter_versions(store: ExperienceStore) -> None:
    d1 = DeadLetterEvent(
        original_subject="s", consumer="c", reason="r1", payload="", created_at=at(1)
    )
    d2 = DeadLetterEvent(
        original_subject="s", consumer="c", reason="r2", payload="", created_at=at(2)
    )
    v = [
        ModelUpdateEvent(adapter_name=n, version=i, sha256="x", path=f"/{n}/{i}")
        for n, i in [("math", 2), ("chat", 1), ("math", 1)]
    ]
    store.append([d1, d2, *v])
    assert [d.reason for d in store.dead_letters()] == ["r2", "r1"]
    assert [d.reason for d in store.dead_letters(limit=1)] == ["r2"]
    assert [(u.adapter_name, u.version) for u in store.adapter_versions()] == [
        ("chat", 1),
        ("math", 1),
        ("math", 2),
    ]
    assert [u.version for u in store.adapter_versions("math")] == [1, 2]


def test_results_with_scores_joins_task_result_score_and_session(store: ExperienceStore) -> None:
    task = make_task(group_id="g", sample_index=1)
    session = make_session(task)
    result = make_result(task, session_event_id=session.event_id)
    score = make_score(result)
    store.append([task, session, result, score])
    [row] = store.results_with_scores()
    assert (row.task_id, row.prompt, row.answer, row.group_id, row.sample_index) == (
        task.task_id,
        task.prompt,
        "5",
        "g",
        1,
    )
    assert (row.result_event_id, row.final_answer, row.steps) == (
        result.event_id,
        "5",
        ["2 + 3 = 5", "done"],
    )
    assert (row.score_event_id, row.scorer, row.outcome_score, row.step_scores) == (
        score.event_id,
        "math",
        1.0,
        [1.0, 0.5],
    )
    assert row.components == {"verifier": 1.0, "format": 1.0}
    # the result carries no token ids: they come from its session
    assert row.prompt_token_ids == [1, 2, 3]
    assert row.completion_token_ids == [4, 5]
    assert row.logprobs == [-0.1, -0.2]


def test_results_with_scores_prefers_the_results_own_tokens(store: ExperienceStore) -> None:
    task = make_task()
    session = make_session(task)
    result = make_result(
        task,
        session_event_id=session.event_id,
        completion_token_ids=[9],
        prompt_token_ids=[8],
        logprobs=[-1.0],
    )
    store.append([task, session, make_score(result)])
    [row] = store.results_with_scores()
    assert (row.prompt_token_ids, row.completion_token_ids, row.logprobs) == ([8], [9], [-1.0])


def test_results_with_scores_filters(store: ExperienceStore) -> None:
    train, held = make_task("t", split="train"), make_task("h", split="heldout")
    r_train = make_result(train, created_at=at(10))
    r_held = make_result(held, created_at=at(20))
    unscored = make_result(make_task("u"))
    store.append(
        [
            make_score(r_train),
            make_score(r_train, scorer="lenient_math"),
            make_score(r_held),
            unscored,
        ]
    )
    rows = store.results_with_scores()
    assert len(rows) == 3  # two scorers on one result give two rows; unscored gives none
    assert all(r.prompt_token_ids is None for r in rows)  # no session, no tokens
    assert {r.task_id for r in store.results_with_scores(split="heldout")} == {held.task_id}
    assert {r.task_id for r in store.results_with_scores(since=at(15))} == {held.task_id}
    assert [r.scorer for r in store.results_with_scores(scorer="lenient_math")] == ["lenient_math"]
    assert [r.created_at for r in store.results_with_scores(split="train", scorer="math")] == [
        at(10)
    ]


def test_duplicate_results_detects_a_planted_duplicate(store: ExperienceStore) -> None:
    task = make_task()
    store.append([task, make_result(task)])
    assert store.duplicate_results() == 0
    store.append([make_result(task)])  # a second result (new event id) for the same task
    assert store.duplicate_results() == 1
