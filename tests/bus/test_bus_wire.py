"""Wire helpers both bus implementations share."""

from __future__ import annotations

import json

import pytest

from tentalis.bus.wire import (
    check_consumer_name,
    dead_letter_event,
    error_reply,
    health_key,
    subject_matches,
)
from tentalis.errors import BusError
from tentalis.events import TaskEvent


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("tentalis.ev.>", "tentalis.ev.task.math", True),
        ("tentalis.ev.>", "tentalis.ev", False),  # '>' needs at least one token
        ("tentalis.ev.task.*", "tentalis.ev.task.math", True),
        ("tentalis.ev.task.*", "tentalis.ev.task.math.extra", False),
        ("tentalis.ev.*.math", "tentalis.ev.result.math", True),
        ("tentalis.ev.*.math", "tentalis.ev.result.chat", False),
        ("tentalis.ev.session", "tentalis.ev.session", True),
        ("tentalis.ev.session", "tentalis.ev.sessions", False),
        ("tentalis.ev.task", "tentalis.ev.task.math", False),
    ],
)
def test_subject_matches_like_nats(pattern: str, subject: str, expected: bool) -> None:
    assert subject_matches(pattern, subject) is expected


def test_health_keys_are_kv_safe() -> None:
    assert health_key("worker-01") == "worker-01"
    assert health_key("worker.01 @host/α") == "worker_01__host__"
    assert health_key("") == "_"


@pytest.mark.parametrize("name", ["", "a.b", "a b", "all>", "x*", "a/b"])
def test_consumer_names_nats_rejects_are_refused(name: str) -> None:
    with pytest.raises(BusError, match="invalid consumer name"):
        check_consumer_name(name)


def test_dead_letter_of_one_delivery_has_a_stable_id() -> None:
    event = TaskEvent(prompt="x")
    fields = dict(subject="s", consumer="c", reason="r", payload=b"\xff{", num_delivered=2)
    first = dead_letter_event(stream_sequence=7, event=event, **fields)  # type: ignore[arg-type]
    again = dead_letter_event(stream_sequence=7, event=event, **fields)  # type: ignore[arg-type]
    other = dead_letter_event(stream_sequence=8, event=event, **fields)  # type: ignore[arg-type]
    assert first.event_id == again.event_id != other.event_id
    assert first.task_id == event.task_id
    assert first.payload == "\ufffd{"


def test_error_reply_is_json_with_the_exception() -> None:
    assert json.loads(error_reply(ValueError("bad input"))) == {"error": "ValueError: bad input"}
