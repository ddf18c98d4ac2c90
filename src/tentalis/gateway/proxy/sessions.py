"""Sessions of proxied calls: which conversation a call belongs to, its turn, its next state.

* **Session id** — the ``X-Session-Id`` header; without it, a fingerprint of the
  conversation's opening (system prompt and first user message), so the turns of one
  conversation still group together when the client cannot set headers. Two different
  conversations with the same opening share a fingerprint: set the header to be sure.
* **Trainable** — ``X-Turn-Type: main`` (the default) marks a turn trainable; ``side``
  (summaries, titles, other helper calls) does not.
* **Turn index** — counted per session; for a session never seen it is the number of
  assistant messages already in the request.
* **Restarts** — each session's counter and last main turn are written to a
  :class:`SessionFile` (SQLite) as the call is placed, so a restarted proxy continues
  the session: its next main turn links to the last one before the restart. The file
  rather than the experience store, because the proxy serves while the bus is down and
  its events then wait in the spool: the store may not hold the last turn yet, the file
  always does.
* **Next state** — when a main turn arrives in a session whose previous main turn is
  known, the messages after that turn's completion (the next user message, tool results,
  tool errors) are its next state: :meth:`SessionTracker.begin` returns a
  :class:`SessionLinkEvent` for it. The link's id is derived from the earlier turn's id,
  so a turn gets one link however often the next call is retried.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tentalis.events import SessionLinkEvent, derived_id, new_id

SESSION_HEADER = "x-session-id"
TURN_TYPE_HEADER = "x-turn-type"
TASK_HEADER = "x-task-id"

TURN_TYPES: dict[str, bool] = {"main": True, "trainable": True, "side": False, "none": False}
_ID = re.compile(r"^[A-Za-z0-9._:@\-]{1,128}$")

Scrub = Callable[[Any], Any]


class SessionHeaderError(ValueError):
    """A session header with a value the proxy does not accept (the message says why)."""


@dataclass(frozen=True)
class Turn:
    """Where one call sits: its event id, session, index, and whether it is trainable."""

    event_id: str
    session_id: str
    turn_index: int
    trainable: bool
    task_id: str | None
    link: SessionLinkEvent | None


@dataclass
class _Last:
    event_id: str
    turn_index: int
    prompt_len: int


@dataclass
class _Session:
    next_index: int
    last_main: _Last | None = None


def check_id(value: str, header: str) -> str:
    if not _ID.match(value):
        raise SessionHeaderError(
            f"{header} must be 1-128 characters of letters, digits and . _ : @ -"
        )
    return value


def parse_turn_type(value: str | None) -> bool:
    """True for a trainable turn; raises SessionHeaderError on an unknown type."""
    if value is None or not value.strip():
        return True
    key = value.strip().lower()
    if key not in TURN_TYPES:
        raise SessionHeaderError(f"X-Turn-Type must be one of: {', '.join(TURN_TYPES)}")
    return TURN_TYPES[key]


def fingerprint(messages: Sequence[dict[str, Any]]) -> str:
    """A session id from the conversation's opening (system prompt + first user message)."""
    system = next((m.get("content") for m in messages if m.get("role") == "system"), None)
    user = next((m.get("content") for m in messages if m.get("role") == "user"), None)
    opening = json.dumps([system, user], sort_keys=True, default=str)
    return "conv-" + derived_id("conversation", opening)[:24]


def next_state(messages: Sequence[dict[str, Any]], prompt_len: int) -> dict[str, Any]:
    """What came after the turn whose prompt was ``messages[:prompt_len]``.

    Normally ``messages[prompt_len]`` is that turn's completion and everything after it
    is the next state. If the history was rewritten, the messages after the last
    assistant message are taken instead (or the last message, when there is none).
    """
    if len(messages) > prompt_len and messages[prompt_len].get("role") == "assistant":
        tail = list(messages[prompt_len + 1 :])
    else:
        last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"),
                   default=None)
        tail = list(messages[last + 1 :]) if last is not None else list(messages[-1:])
    kinds = {str(m.get("role")) for m in tail}
    kind = "tool" if "tool" in kinds or "function" in kinds else "user" if "user" in kinds else (
        next(iter(kinds)) if kinds else "none")
    return {"kind": kind, "messages": tail}


class SessionFile:
    """Session states in a SQLite file, so that they outlive the proxy process.

    Opened on first use, reopened after :meth:`close`. Written in WAL mode with
    ``synchronous=NORMAL``: a state survives a crash of the process (not necessarily of
    the machine). The least recently placed sessions beyond ``keep`` are forgotten.
    """

    _PRUNE_EVERY = 1000

    def __init__(self, path: Path, keep: int = 100_000) -> None:
        self.path = Path(path)
        self.keep = keep
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._writes = 0

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS sessions (session_id TEXT PRIMARY KEY, "
                "next_index INTEGER NOT NULL, last_event_id TEXT, last_turn_index INTEGER, "
                "last_prompt_len INTEGER, updated REAL NOT NULL)")
            self._db = db
        return self._db

    def get(self, session_id: str) -> _Session | None:
        with self._lock:
            row = self._conn().execute(
                "SELECT next_index, last_event_id, last_turn_index, last_prompt_len "
                "FROM sessions WHERE session_id = ?", (session_id,)).fetchone()
        if row is None:
            return None
        last = None if row[1] is None else _Last(row[1], row[2], row[3])
        return _Session(next_index=row[0], last_main=last)

    def put(self, session_id: str, state: _Session) -> None:
        last = state.last_main
        row = (None, None, None) if last is None else (
            last.event_id, last.turn_index, last.prompt_len)
        with self._lock:
            db = self._conn()
            db.execute("INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?, ?)",
                       (session_id, state.next_index, *row, time.time()))
            self._writes += 1
            if self._writes % self._PRUNE_EVERY == 0:
                db.execute("DELETE FROM sessions WHERE session_id NOT IN (SELECT session_id "
                           "FROM sessions ORDER BY updated DESC LIMIT ?)", (self.keep,))

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class SessionTracker:
    """Session state, bounded in memory (least recently used sessions are forgotten from
    memory) and, with a :class:`SessionFile`, kept across restarts."""

    def __init__(self, max_sessions: int = 10_000, scrub: Scrub | None = None,
                 file: SessionFile | None = None) -> None:
        self.max_sessions = max_sessions
        self.scrub = scrub or (lambda x: x)
        self.file = file
        self._sessions: OrderedDict[str, _Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def begin(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        session_id: str | None = None,
        turn_type: str | None = None,
        task_id: str | None = None,
        source: str = "",
    ) -> Turn:
        """Place a new call in its session (raises SessionHeaderError on bad headers)."""
        trainable = parse_turn_type(turn_type)
        sid = check_id(session_id, "X-Session-Id") if session_id else fingerprint(messages)
        if task_id is not None:
            check_id(task_id, "X-Task-Id")
        state = self._sessions.get(sid)
        if state is None:
            state = self.file.get(sid) if self.file is not None else None
            if state is None:
                index = sum(1 for m in messages if m.get("role") == "assistant")
                state = _Session(next_index=index)
            self._sessions[sid] = state
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(sid)
        event_id = new_id()
        turn_index = state.next_index
        state.next_index += 1
        link = None
        if trainable and state.last_main is not None:
            last = state.last_main
            link = SessionLinkEvent(
                event_id=derived_id(last.event_id, "next"),
                session_id=sid,
                session_event_id=last.event_id,
                turn_index=last.turn_index,
                next_event_id=event_id,
                next_state=self.scrub(next_state(messages, last.prompt_len)),
                task_id=task_id,
                source=source,
            )
        if trainable:
            state.last_main = _Last(event_id, turn_index, len(messages))
        if self.file is not None:
            self.file.put(sid, state)
        return Turn(event_id, sid, turn_index, trainable, task_id, link)
