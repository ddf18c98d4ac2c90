"""Session state kept in a SessionFile outlives the tracker that wrote it."""

from __future__ import annotations

from pathlib import Path

from tentalis.gateway.proxy.sessions import SessionFile, SessionTracker


def test_a_new_tracker_over_the_same_file_continues_the_session(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    first = SessionTracker(file=SessionFile(path))
    chat = [{"role": "user", "content": "one"}]
    t0 = first.begin(chat, session_id="s")
    chat += [{"role": "assistant", "content": "a"}, {"role": "user", "content": "two"}]
    t1 = first.begin(chat, session_id="s")
    side = first.begin([{"role": "user", "content": "title?"}], session_id="s",
                       turn_type="side")
    assert first.file is not None
    first.file.close()
    again = SessionTracker(file=SessionFile(path))
    chat += [{"role": "assistant", "content": "b"}, {"role": "user", "content": "three"}]
    t2 = again.begin(chat, session_id="s")
    assert [t0.turn_index, t1.turn_index, side.turn_index, t2.turn_index] == [0, 1, 2, 3]
    assert t2.link is not None and t2.link.session_event_id == t1.event_id
    assert t2.link.next_state == {"kind": "user",
                                  "messages": [{"role": "user", "content": "three"}]}


def test_without_a_file_a_new_tracker_starts_from_the_request() -> None:
    chat = [{"role": "user", "content": "one"}, {"role": "assistant", "content": "a"},
            {"role": "user", "content": "two"}]
    turn = SessionTracker().begin(chat, session_id="s")
    assert turn.turn_index == 1 and turn.link is None
