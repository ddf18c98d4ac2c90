from __future__ import annotations

import json

import pytest

from tentalis.errors import EventDecodeError
from tentalis.events import (
    EVENT_KINDS,
    AdapterLoadedEvent,
    FeedbackEvent,
    GuardEvent,
    ModelUpdateEvent,
    ResultEvent,
    ScoreEvent,
    SessionEvent,
    SessionLinkEvent,
    Subjects,
    TaskEvent,
    decode_event,
    derived_id,
)


def _examples():  # type: ignore[no-untyped-def]
    task = TaskEvent(prompt="What is 2 + 2?", answer="4")
    result = ResultEvent(task_id=task.task_id, task=task, worker_id="w1", raw_text="x",
                         steps=["2 + 2 = 4"], final_answer="4")
    return [
        task,
        result,
        ScoreEvent(task_id=task.task_id, result=result, scorer="math", step_scores=[1.0],
                   outcome_score=1.0),
        FeedbackEvent(task_id=task.task_id, score=1.0, feedback="good"),
        SessionEvent(session_id="s", messages=[{"role": "user", "content": "hi"}],
                     completion="hello", completion_token_ids=[5, 6], logprobs=[-0.1, -0.2]),
        SessionLinkEvent(session_id="s", session_event_id="e1", turn_index=0,
                         next_state={"messages": [{"role": "user", "content": "thanks"}]}),
        ModelUpdateEvent(adapter_name="math", version=3, sha256="ab" * 32, path="/a/v3"),
        AdapterLoadedEvent(worker_id="w1", adapter_name="math", version=3, sha256="ab" * 32,
                           update_event_id="u1", previous_version=2),
        GuardEvent(trainer_id="trainer-01", level="hard_stop", signals=["length_drift"],
                   reason="length drift", numbers={"length_drift": 3.1}),
    ]


@pytest.mark.parametrize("event", _examples(), ids=lambda e: e.kind)
def test_round_trip(event) -> None:  # type: ignore[no-untyped-def]
    decoded = decode_event(event.to_bytes())
    assert type(decoded) is type(event) and decoded == event
    assert decoded.subject().startswith(Subjects.PREFIX)


def test_every_kind_is_decodable() -> None:
    assert {e.kind for e in _examples()} | {"dead_letter"} == set(EVENT_KINDS)


def test_newer_minor_version_with_unknown_fields_is_accepted() -> None:
    data = json.loads(TaskEvent(prompt="p").to_bytes())
    data["schema_version"] = "1.7"
    data["some_future_field"] = {"x": 1}
    assert isinstance(decode_event(json.dumps(data)), TaskEvent)


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (b"{not json", "invalid event"),
        (json.dumps({"kind": "telepathy"}).encode(), "kind"),
        (json.dumps({"kind": "task"}).encode(), "prompt"),
        (json.dumps({"kind": "task", "prompt": "p", "schema_version": "2.0"}).encode(), "2.0"),
    ],
)
def test_bad_payloads_raise_with_the_reason(payload: bytes, needle: str) -> None:
    with pytest.raises(EventDecodeError, match=needle):
        decode_event(payload)


def test_scores_must_be_in_unit_interval() -> None:
    task = TaskEvent(prompt="p")
    result = ResultEvent(task_id=task.task_id, task=task, worker_id="w", raw_text="")
    with pytest.raises(ValueError):
        ScoreEvent(task_id=task.task_id, result=result, scorer="s", outcome_score=1.5)


def test_derived_ids_are_stable_and_distinct() -> None:
    assert derived_id("a", "result") == derived_id("a", "result")
    assert derived_id("a", "result") != derived_id("a", "feedback")
