"""Reading proxied sessions back: each turn with its next state, and the session's feedback.

A turn (``SessionEvent``) is recorded as it was published, before anything followed it;
its next state arrives later as a ``SessionLinkEvent``. :func:`session_view` joins the two,
so a reader gets turns whose ``next_state`` is filled in wherever a link was recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

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


def recent_sessions(store: ExperienceStore, limit: int = 20) -> list[tuple[str, int, str]]:
    """``(session_id, turns, last turn's created_at)`` for the latest sessions, newest first."""
    rows = store.read(
        """SELECT session_id, COUNT(*), MAX(created_at) FROM sessions
           GROUP BY session_id ORDER BY MAX(created_at) DESC LIMIT ?""",
        (limit,),
    )
    return [(r[0], int(r[1]), r[2]) for r in rows]
