"""Reading proxied sessions back: each turn with its next state, and the session's feedback.

A turn (``SessionEvent``) is recorded as it was published, before anything followed it;
its next state arrives later as a ``SessionLinkEvent``. :func:`session_view` joins the two,
so a reader gets turns whose ``next_state`` is filled in wherever a link was recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from tentalis.events import FeedbackEvent, SessionEvent, decode_event
from tentalis.store.sqlite import ExperienceStore


@dataclass(frozen=True)
class SessionView:
    """Every recorded turn of one session (turn order) and the feedback on it."""

    session_id: str
    turns: list[SessionEvent] = field(default_factory=list)
    feedback: list[FeedbackEvent] = field(default_factory=list)


def session_view(store: ExperienceStore, session_id: str) -> SessionView | None:
    """The session's turns (``next_state`` from their links) and feedback; None if unknown."""
    rows = store.read(
        """SELECT e.payload, (SELECT l.next_state FROM session_links l
                              WHERE l.session_event_id = s.event_id
                              ORDER BY l.created_at DESC, l.event_id LIMIT 1)
           FROM sessions s JOIN events e ON e.event_id = s.event_id
           WHERE s.session_id = ? ORDER BY s.turn_index, s.created_at, s.event_id""",
        (session_id,),
    )
    turns: list[SessionEvent] = []
    for payload, link in rows:
        turn = decode_event(payload)
        assert isinstance(turn, SessionEvent)
        if link is not None and turn.next_state is None:
            turn = turn.model_copy(update={"next_state": json.loads(link)})
        turns.append(turn)
    feedback = [
        decode_event(r[0])
        for r in store.read(
            """SELECT e.payload FROM feedback f JOIN events e ON e.event_id = f.event_id
               WHERE f.session_id = ? ORDER BY f.created_at, f.event_id""",
            (session_id,),
        )
    ]
    if not turns and not feedback:
        return None
    return SessionView(session_id, turns, feedback)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SessionSummary:
    """One line of a session listing. A turn is one call (its choices count once); main
    turns succeeded and are trainable, side turns were marked auxiliary, failed turns were
    refused or failed (``finish_reason`` ``error:…``)."""

    session_id: str
    turns: int
    main_turns: int
    side_turns: int
    failed_turns: int
    first_at: datetime
    last_at: datetime
    model: str


def list_sessions(store: ExperienceStore, limit: int = 20, offset: int = 0
                  ) -> list[SessionSummary]:
    """The sessions with the latest turns first, ``limit`` of them from ``offset``."""
    rows = store.read(
        """SELECT s.session_id, COUNT(DISTINCT s.turn_index),
                  COUNT(DISTINCT CASE WHEN s.trainable = 1 THEN s.turn_index END),
                  COUNT(DISTINCT CASE WHEN s.turn_type = 'side'
                                       AND COALESCE(s.finish_reason, '') NOT LIKE 'error:%'
                                      THEN s.turn_index END),
                  COUNT(DISTINCT CASE WHEN s.finish_reason LIKE 'error:%'
                                      THEN s.turn_index END),
                  MIN(s.created_at), MAX(s.created_at),
                  (SELECT l.model FROM sessions l WHERE l.session_id = s.session_id
                   ORDER BY l.created_at DESC, l.event_id LIMIT 1)
           FROM sessions s GROUP BY s.session_id
           ORDER BY MAX(s.created_at) DESC, s.session_id LIMIT ? OFFSET ?""",
        (limit, offset),
    )
    return [SessionSummary(r[0], int(r[1]), int(r[2]), int(r[3]), int(r[4]),
                           datetime.fromisoformat(r[5]), datetime.fromisoformat(r[6]), r[7])
            for r in rows]

