"""Session turns read back with their next-state links; feedback on sessions."""

from __future__ import annotations

from pathlib import Path

from tentalis.events import FeedbackEvent, SessionEvent, SessionLinkEvent
from tentalis.store import ExperienceStore
from tentalis.store.sessions import list_sessions, session_view


def test_turns_come_back_with_their_links_and_feedback(tmp_path: Path) -> None:
    store = ExperienceStore(tmp_path / "x.db")
    t0 = SessionEvent(session_id="s1", turn_index=0, messages=[{"role": "user", "content": "a"}],
                      completion="b")
    t1 = SessionEvent(session_id="s1", turn_index=1, messages=[{"role": "user", "content": "c"}],
                      completion="d")
    link = SessionLinkEvent(session_id="s1", session_event_id=t0.event_id, turn_index=0,
                            next_event_id=t1.event_id,
                            next_state={"messages": [{"role": "user", "content": "c"}]})
    fb = FeedbackEvent(task_id="session:s1", session_id="s1", session_event_id=t1.event_id,
                       feedback_kind="thumbs", score=1.0)
    # the link recorded before its turn still joins (order on the bus is not relied on)
    assert store.append([link, t1, t0, fb, link]) == 4
    view = session_view(store, "s1")
    assert view is not None
    assert [t.turn_index for t in view.turns] == [0, 1]
    assert view.turns[0].next_state == {"messages": [{"role": "user", "content": "c"}]}
    assert view.turns[1].next_state is None
    assert [f.feedback_kind for f in view.feedback] == ["thumbs"]
    assert session_view(store, "nope") is None
    listed = list_sessions(store)[0]
    assert (listed.session_id, listed.turns, listed.main_turns) == ("s1", 2, 2)
    store.close()
