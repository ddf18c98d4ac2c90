"""Sessions of proxied calls: which conversation a call belongs to, its turn, its next state.

* **Session id** — the ``X-Session-Id`` header when the client sends one. Without it the
  call is matched to a session the proxy has seen, in this order:

  1. *longest common prefix*: the known session whose main calls sent the longest prefix
     of this call's messages. The prefix must hold at least ``min_prefix`` messages that
     are not system/developer messages (``INTERCEPT_SESSION_MIN_MESSAGES``, default 1: the
     first user message), so a shared system prompt alone never joins two conversations.
     Ties — two sessions that both sent that prefix — go to the one that sent it last.
  2. *compacted history*: a client that compacts its history (OpenClaw, for one) replaces
     the old turns with a summary and keeps the recent messages. The call's messages after
     its system messages and the one message that follows them (the summary) are looked
     up one by one; if they open with a run of messages that one known session sent,
     holding at least ``min_prefix`` user or tool messages, the call continues that
     session.
  3. otherwise a new session, named by a fingerprint of the conversation's opening
     (system prompt and first user message). Two conversations with the same opening
     share it: set the header to be sure.

  Every response carries the session's id in ``X-Session-Id``, so a client can keep it.
* **Turn type** — ``main`` turns are trainable; ``side`` turns (summaries, titles,
  compaction and other helper calls) are recorded but not trained on and never linked.
  A client marks a call with ``X-Tentalis-Turn: side`` (or ``X-Turn-Type``); without a
  header, a call whose system messages or last message match the configured pattern
  (``INTERCEPT_SIDE_TURN_PATTERN``, a regular expression) is a side turn.
* **Failed turns** — a call the proxy refuses (400: caps, headers, a redirect field) or
  the backend fails is recorded with ``trainable=False`` and ``finish_reason
  "error:<why>"``; it never becomes the turn whose next state the following call gives.
* **Turn index** — counted per session; for a session never seen it is the number of
  assistant messages already in the request.
* **Restarts** — each session's counter, last good main turn and the hashes of the
  messages its main calls sent are written to a :class:`SessionFile` (SQLite), so a
  restarted proxy continues the session. The file rather than the experience store,
  because the proxy serves while the bus is down and its events then wait in the spool:
  the store may not hold the last turn yet, the file always does.
* **Next state** — when a main turn has been answered and its session's previous good main
  turn is known, the messages after that turn's completion (the next user message, tool
  results, tool errors) are its next state: :meth:`SessionTracker.finish` returns a
  :class:`SessionLinkEvent` for it. The link's id is derived from the earlier turn's id,
  so a turn gets one link however often the next call is retried or fails.
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
from tentalis.gateway.proxy.history import (
    INSTRUCTION_ROLES,
    after_summary,
    conversational,
    message_hash,
    prefix_hashes,
)

SESSION_HEADER = "x-session-id"
TURN_TYPE_HEADERS = ("x-tentalis-turn", "x-turn-type")
TASK_HEADER = "x-task-id"

TURN_TYPES: dict[str, str] = {"main": "main", "trainable": "main", "side": "side",
                              "none": "side"}
_ID = re.compile(r"^[A-Za-z0-9._:@\-]{1,128}$")

Scrub = Callable[[Any], Any]


class SessionHeaderError(ValueError):
    """A session header with a value the proxy does not accept (the message says why)."""


@dataclass(frozen=True)
class Turn:
    """Where one call sits: its event id, session, index, and its type (main or side)."""

    event_id: str
    session_id: str
    turn_index: int
    turn_type: str
    task_id: str | None
    source: str = ""

    @property
    def trainable(self) -> bool:
        return self.turn_type == "main"


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


def parse_turn_type(value: str | None) -> str | None:
    """``main`` or ``side``; None when unset; raises SessionHeaderError on an unknown type."""
    if value is None or not value.strip():
        return None
    key = value.strip().lower()
    if key not in TURN_TYPES:
        raise SessionHeaderError(f"X-Tentalis-Turn (X-Turn-Type) must be one of: "
                                 f"{', '.join(TURN_TYPES)}")
    return TURN_TYPES[key]


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def matches_side_rule(messages: Sequence[dict[str, Any]], pattern: re.Pattern[str]) -> bool:
    """Whether the system/developer messages or the last message match ``pattern``."""
    texts = [_text(m) for m in messages if m.get("role") in INSTRUCTION_ROLES]
    texts += [_text(messages[-1])] if messages else []
    return any(pattern.search(t) for t in texts)


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
    """Session states and the message hashes of their main calls in a SQLite file, so
    that they outlive the proxy process.

    Opened on first use, reopened after :meth:`close` (``:memory:`` keeps them in memory
    only). Written in WAL mode with ``synchronous=NORMAL``: a state survives a crash of
    the process (not necessarily of the machine). The least recently placed sessions
    beyond ``keep`` are forgotten, with their hashes.
    """

    _PRUNE_EVERY = 1000

    def __init__(self, path: Path | str, keep: int = 100_000) -> None:
        self.path = Path(path)
        self.keep = keep
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._writes = 0

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            memory = str(self.path) == ":memory:"
            if not memory:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(":memory:" if memory else self.path, check_same_thread=False,
                                 isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS sessions (session_id TEXT PRIMARY KEY, "
                "next_index INTEGER NOT NULL, last_event_id TEXT, last_turn_index INTEGER, "
                "last_prompt_len INTEGER, updated REAL NOT NULL)")
            # prefix hash → the session that last sent that prefix (and its length)
            db.execute("CREATE TABLE IF NOT EXISTS prefixes (hash TEXT PRIMARY KEY, "
                       "session_id TEXT NOT NULL, length INTEGER NOT NULL)")
            # message hash → the session that last sent that message
            db.execute("CREATE TABLE IF NOT EXISTS messages (hash TEXT PRIMARY KEY, "
                       "session_id TEXT NOT NULL)")
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
                self._prune(db)

    def _prune(self, db: sqlite3.Connection) -> None:
        db.execute("DELETE FROM sessions WHERE session_id NOT IN (SELECT session_id "
                   "FROM sessions ORDER BY updated DESC LIMIT ?)", (self.keep,))
        for table in ("prefixes", "messages"):
            db.execute(f"DELETE FROM {table} WHERE session_id NOT IN "
                       "(SELECT session_id FROM sessions)")

    def remember(self, session_id: str, messages: Sequence[dict[str, Any]],
                 min_prefix: int) -> None:
        """Note that ``session_id`` sent ``messages`` (its prefixes and each message)."""
        counts = conversational(messages)
        prefixes = [(h, session_id, i + 1) for i, h in enumerate(prefix_hashes(messages))
                    if counts[i] >= min_prefix]
        singles = [(message_hash(m), session_id) for m in messages
                   if m.get("role") not in INSTRUCTION_ROLES]
        with self._lock:
            db = self._conn()
            db.execute("BEGIN")
            try:
                db.executemany("INSERT OR REPLACE INTO prefixes VALUES (?, ?, ?)", prefixes)
                db.executemany("INSERT OR REPLACE INTO messages VALUES (?, ?)", singles)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def match(self, messages: Sequence[dict[str, Any]], min_prefix: int) -> str | None:
        """The known session ``messages`` continue (module doc, rules 1 and 2), or None."""
        hashes = prefix_hashes(messages)
        with self._lock:
            db = self._conn()
            found = db.execute(
                f"SELECT session_id FROM prefixes WHERE hash IN "
                f"({', '.join('?' * len(hashes))}) ORDER BY length DESC LIMIT 1",
                hashes).fetchone() if hashes else None
            if found is not None:
                return str(found[0])
            start = after_summary(messages)
            if start is None:
                return None
            kept = messages[start:]
            rows = db.execute(
                f"SELECT hash, session_id FROM messages WHERE hash IN "
                f"({', '.join('?' * len(kept))})", [message_hash(m) for m in kept]).fetchall()
        owner = dict(rows)
        session, run = None, 0
        for m in kept:
            sid = owner.get(message_hash(m))
            if sid is None or (session is not None and sid != session):
                break
            session = sid
            # the client's own messages: a deterministic model's replies (a greeting, say)
            # repeat across conversations and prove little
            run += m.get("role") not in (*INSTRUCTION_ROLES, "assistant")
        return session if session is not None and run >= min_prefix else None

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


class SessionTracker:
    """Session state, bounded in memory (least recently used sessions are forgotten from
    memory) and kept in a :class:`SessionFile` (in memory only when none is given)."""

    def __init__(self, max_sessions: int = 10_000, scrub: Scrub | None = None,
                 file: SessionFile | None = None, *, min_prefix: int = 1,
                 side_pattern: re.Pattern[str] | None = None) -> None:
        self.max_sessions = max_sessions
        self.scrub = scrub or (lambda x: x)
        self.file = file if file is not None else SessionFile(":memory:")
        self.min_prefix = min_prefix
        self.side_pattern = side_pattern
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def _state(self, sid: str, messages: Sequence[dict[str, Any]]) -> _Session:
        state = self._sessions.get(sid)
        if state is not None:
            self._sessions.move_to_end(sid)
            return state
        state = self.file.get(sid) or _Session(
            next_index=sum(1 for m in messages if m.get("role") == "assistant"))
        self._sessions[sid] = state
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return state

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
        kind = parse_turn_type(turn_type)
        if session_id is not None:
            check_id(session_id, "X-Session-Id")
        if task_id is not None:
            check_id(task_id, "X-Task-Id")
        if kind is None:
            side = self.side_pattern is not None and matches_side_rule(messages,
                                                                       self.side_pattern)
            kind = "side" if side else "main"
        sid = session_id or self.file.match(messages, self.min_prefix) or fingerprint(messages)
        with self._lock:
            state = self._state(sid, messages)
            turn_index = state.next_index
            state.next_index += 1
            self.file.put(sid, state)
        if kind == "main":
            self.file.remember(sid, messages, self.min_prefix)
        return Turn(new_id(), sid, turn_index, kind, task_id, source)

    def finish(self, turn: Turn, messages: Sequence[dict[str, Any]], *, ok: bool
               ) -> SessionLinkEvent | None:
        """A call has been answered: a good main turn becomes its session's last one, and
        the link from the previous good main turn to it is returned. A failed or side
        turn changes nothing."""
        if not ok or not turn.trainable:
            return None
        with self._lock:
            state = self._state(turn.session_id, messages)
            last = state.last_main
            if last is not None and last.turn_index >= turn.turn_index:
                return None  # a later turn was answered first: it is the predecessor now
            state.last_main = _Last(turn.event_id, turn.turn_index, len(messages))
            self.file.put(turn.session_id, state)
        if last is None:
            return None
        return SessionLinkEvent(
            event_id=derived_id(last.event_id, "next"),
            session_id=turn.session_id,
            session_event_id=last.event_id,
            turn_index=last.turn_index,
            next_event_id=turn.event_id,
            next_state=self.scrub(next_state(messages, last.prompt_len)),
            task_id=turn.task_id,
            source=turn.source,
        )
