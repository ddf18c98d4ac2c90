"""Session placement: the SessionFile across restarts, matching without X-Session-Id
(longest common prefix, compacted histories), failed turns skipped by the next-state link,
side turns by header and by rule."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tentalis.gateway.proxy.sessions import (
    SessionFile,
    SessionHeaderError,
    SessionTracker,
    fingerprint,
)

SYSTEM = {"role": "system", "content": "You are a helpful agent."}


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def test_a_new_tracker_over_the_same_file_continues_the_session(tmp_path: Path) -> None:
    path = tmp_path / "sessions.sqlite3"
    first = SessionTracker(file=SessionFile(path))
    chat = [user("one")]
    t0 = first.begin(chat, session_id="s")
    assert first.finish(t0, chat, ok=True) is None  # nothing before it
    chat += [assistant("a"), user("two")]
    t1 = first.begin(chat, session_id="s")
    first.finish(t1, chat, ok=True)
    side = first.begin([user("title?")], session_id="s", turn_type="side")
    assert first.finish(side, [user("title?")], ok=True) is None
    first.file.close()
    again = SessionTracker(file=SessionFile(path))
    chat += [assistant("b"), user("three")]
    t2 = again.begin(chat, session_id="s")
    link = again.finish(t2, chat, ok=True)
    assert [t0.turn_index, t1.turn_index, side.turn_index, t2.turn_index] == [0, 1, 2, 3]
    assert link is not None and link.session_event_id == t1.event_id
    assert link.next_event_id == t2.event_id
    assert link.next_state == {"kind": "user", "messages": [user("three")]}


def test_without_a_file_a_new_tracker_starts_from_the_request() -> None:
    chat = [user("one"), assistant("a"), user("two")]
    tracker = SessionTracker()
    turn = tracker.begin(chat, session_id="s")
    assert turn.turn_index == 1 and tracker.finish(turn, chat, ok=True) is None


def test_a_failed_call_is_never_the_predecessor_whose_next_state_is_taken() -> None:
    tracker = SessionTracker()
    chat = [SYSTEM, user("fix the bug")]
    good = tracker.begin(chat)
    tracker.finish(good, chat, ok=True)
    chat = [*chat, assistant("patched"), user("run the tests")]
    failed = tracker.begin(chat)
    assert failed.session_id == good.session_id
    assert tracker.finish(failed, chat, ok=False) is None
    retried = tracker.begin(chat)
    link = tracker.finish(retried, chat, ok=True)
    assert link is not None
    assert (link.session_event_id, link.next_event_id) == (good.event_id, retried.event_id)
    assert link.next_state == {"kind": "user", "messages": [user("run the tests")]}
    assert [good.turn_index, failed.turn_index, retried.turn_index] == [0, 1, 2]


def test_without_the_header_a_call_joins_the_session_with_the_longest_common_prefix() -> None:
    tracker = SessionTracker()
    rome = tracker.begin([SYSTEM, user("plan a trip"), assistant("where?"), user("Rome")],
                         session_id="rome")
    trip = tracker.begin([SYSTEM, user("plan a trip")], session_id="trip")
    # shares four messages with "rome", two with "trip" (which sent them last): the
    # longer common prefix wins
    later = tracker.begin([SYSTEM, user("plan a trip"), assistant("where?"), user("Rome"),
                           assistant("when?"), user("May")])
    assert (rome.session_id, trip.session_id, later.session_id) == ("rome", "trip", "rome")
    # a tie — both sessions sent [SYSTEM, "plan a trip"] — goes to the one that sent it last
    tracker.begin([SYSTEM, user("plan a trip")], session_id="trip")
    assert tracker.begin([SYSTEM, user("plan a trip"), assistant("hm"), user("Paris")]
                         ).session_id == "trip"
    # a shared system prompt alone is not enough: a new session, named by its opening
    other = [SYSTEM, user("write a poem")]
    assert tracker.begin(other).session_id == fingerprint(other)


def test_the_minimum_counts_conversational_messages_only() -> None:
    tracker = SessionTracker(min_prefix=2)
    tracker.begin([SYSTEM, user("hello"), assistant("hi"), user("how are you")],
                  session_id="s")
    assert tracker.begin([SYSTEM, user("hello"), assistant("hi"), user("bye")]
                         ).session_id == "s"
    assert tracker.begin([SYSTEM, user("hello"), assistant("yo")]).session_id != "s"
    assert tracker.begin([SYSTEM, user("hello")]).session_id != "s"


def test_a_compacted_history_continues_its_session(tmp_path: Path) -> None:
    """OpenClaw-style compaction: the old turns become one summary message, the recent
    ones are kept; the fingerprint (system + first user message) changes, the session
    does not — also after a restart of the proxy."""
    path = tmp_path / "sessions.sqlite3"
    tracker = SessionTracker(file=SessionFile(path))
    chat = [SYSTEM, user("list the files")]
    turns = []
    for answer, nxt in [("a.py b.py", "open a.py"), ("def f(): ...", "explain f")]:
        turn = tracker.begin(chat)
        tracker.finish(turn, chat, ok=True)
        turns.append(turn)
        chat = [*chat, assistant(answer), user(nxt)]
    last = tracker.begin(chat)
    tracker.finish(last, chat, ok=True)
    assert {t.session_id for t in turns} == {last.session_id}
    tracker.file.close()

    tracker = SessionTracker(file=SessionFile(path))
    compacted = [SYSTEM, user("Summary: the user listed files and opened a.py."),
                 assistant("def f(): ..."), user("explain f"), assistant("f does nothing."),
                 user("then delete it")]
    assert fingerprint(compacted) != last.session_id
    after = tracker.begin(compacted)
    assert after.session_id == last.session_id
    assert after.turn_index == last.turn_index + 1
    link = tracker.finish(after, compacted, ok=True)
    assert link is not None and link.session_event_id == last.event_id
    # a summary with nothing kept after it cannot be placed by its messages
    lone = [SYSTEM, user("Summary: something else entirely."), user("go on")]
    assert tracker.begin(lone).session_id == fingerprint(lone)


def test_side_turns_by_header_and_by_rule() -> None:
    tracker = SessionTracker(side_pattern=re.compile(r"(?i)summari[sz]e the conversation"))
    chat = [SYSTEM, user("hello")]
    assert tracker.begin(chat, turn_type="side").turn_type == "side"
    assert not tracker.begin(chat, turn_type="SIDE").trainable
    compaction = [{"role": "system", "content": "Summarize the conversation below."},
                  user("…")]
    assert tracker.begin(compaction).turn_type == "side"
    asked = [SYSTEM, user("hello"), assistant("hi"), user("Please summarise the conversation")]
    assert tracker.begin(asked).turn_type == "side"  # the rule reads the last message too
    assert tracker.begin(compaction, turn_type="main").turn_type == "main"  # header wins
    assert tracker.begin(chat).turn_type == "main"
    with pytest.raises(SessionHeaderError, match="X-Tentalis-Turn"):
        tracker.begin(chat, turn_type="sideways")


def test_side_turns_never_become_the_predecessor() -> None:
    tracker = SessionTracker()
    chat = [user("q1")]
    main = tracker.begin(chat, session_id="s")
    tracker.finish(main, chat, ok=True)
    side = tracker.begin([user("title?")], session_id="s", turn_type="side")
    assert tracker.finish(side, [user("title?")], ok=True) is None
    chat = [user("q1"), assistant("a1"), user("q2")]
    nxt = tracker.begin(chat, session_id="s")
    link = tracker.finish(nxt, chat, ok=True)
    assert link is not None and link.session_event_id == main.event_id


def test_a_repeated_assistant_reply_alone_does_not_join_a_new_conversation() -> None:
    tracker = SessionTracker()
    tracker.begin([SYSTEM, user("hi"), assistant("Hello! How can I help?"), user("a poem")],
                  session_id="old")
    other = [SYSTEM, user("hey"), assistant("Hello! How can I help?"), user("a limerick")]
    assert tracker.begin(other).session_id == fingerprint(other)
