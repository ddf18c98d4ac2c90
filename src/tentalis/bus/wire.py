"""What every bus implementation must put on the wire the same way.

Subject matching with NATS wildcards, the dead-letter event, the error reply of a failed
request handler, and the names NATS accepts for consumers and health keys. The NATS bus
and the in-memory test double both use these, so their observable behaviour cannot drift.
"""

from __future__ import annotations

import json
import re

from tentalis.errors import BusError
from tentalis.events import DeadLetterEvent, Event, Subjects, derived_id, new_id

_CONSUMER_NAME_BAD = re.compile(r"[\s.*>/\\]")
_HEALTH_KEY_BAD = re.compile(r"[^-_=a-zA-Z0-9]")


def subject_matches(pattern: str, subject: str) -> bool:
    """True when ``subject`` matches the NATS ``pattern`` (``*`` one token, ``>`` the rest)."""
    p_tokens, s_tokens = pattern.split("."), subject.split(".")
    for i, p in enumerate(p_tokens):
        if p == ">":
            return len(s_tokens) > i
        if i >= len(s_tokens) or (p != "*" and p != s_tokens[i]):
            return False
    return len(p_tokens) == len(s_tokens)


def check_consumer_name(name: str) -> str:
    """Return ``name`` if NATS accepts it as a durable consumer name, else raise BusError."""
    if not name or _CONSUMER_NAME_BAD.search(name):
        raise BusError(
            f"invalid consumer name {name!r}: it must be non-empty and contain no "
            "whitespace, '.', '*', '>', '/' or '\\'"
        )
    return name


def health_key(key: str) -> str:
    """A key the JetStream KV store accepts: every other character becomes ``_``."""
    return _HEALTH_KEY_BAD.sub("_", key) or "_"


def error_reply(exc: BaseException) -> bytes:
    """The reply a request gets when the serving handler raised."""
    return json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()


def dead_letter_event(
    *,
    subject: str,
    consumer: str,
    reason: str,
    payload: bytes,
    num_delivered: int,
    stream_sequence: int | None,
    event: Event | None = None,
) -> DeadLetterEvent:
    """The DeadLetterEvent for a delivery that could not be handled.

    Its ``event_id`` is derived from (stream sequence, consumer), so dead-lettering the same
    delivery twice (e.g. the terminate was lost and the message came back) is deduplicated.
    """
    event_id = (
        derived_id("dead-letter", consumer, str(stream_sequence))
        if stream_sequence is not None
        else new_id()
    )
    return DeadLetterEvent(
        event_id=event_id,
        task_id=event.task_id if event is not None else None,
        source=consumer,
        original_subject=subject,
        consumer=consumer,
        reason=reason,
        payload=payload.decode("utf-8", errors="replace"),
        num_delivered=num_delivered,
        stream_sequence=stream_sequence,
    )


def exhausted_reason(num_delivered: int) -> str:
    """The dead letter's reason for a message that was never settled on its last allowed
    delivery (its reader died, hung past ``ack_wait`` or released it)."""
    return (
        f"no ack after {num_delivered} deliveries (max_deliver): the handler died, hung "
        "past ack_wait or released the message on its last delivery"
    )


def is_dead_letter_subject(subject: str) -> bool:
    """Dead letters that fail again are dropped (logged), never dead-lettered in a loop."""
    return subject == Subjects.DEAD_LETTER
