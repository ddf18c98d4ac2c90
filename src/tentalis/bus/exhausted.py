"""Dead letters for messages JetStream gave up on: its max-deliveries advisory, kept.

A delivery neither acked nor terminated on its last allowed attempt (the reader died, hung
past ``ack_wait``, or released it) is never delivered again, and JetStream says so only in
a core-NATS advisory on ``$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>``,
which nobody may be listening to at that moment. The NATS bus keeps these advisories in a
stream of their own; every reader of a consumer also reads that consumer's advisories
(shared like its messages), looks the message up and dead-letters it with the reason. So a
reader that starts after its predecessor died still dead-letters what was left behind.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js import api as js_api

from tentalis.bus.wire import dead_letter_event, exhausted_reason, is_dead_letter_subject
from tentalis.errors import EventDecodeError
from tentalis.events import Event, decode_event

log = logging.getLogger(__name__)

ADVISORY = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"

Publish = Callable[[Event], Awaitable[bool]]


def advisory_stream(stream: str) -> str:
    """The stream that keeps ``stream``'s max-deliveries advisories."""
    return f"{stream}_MAX_DELIVERIES"


def advisory_subject(stream: str, consumer: str = "*") -> str:
    """The advisory subject of ``consumer`` on ``stream`` (every consumer's by default)."""
    return f"{ADVISORY}.{stream}.{consumer}"


def advisory_stream_config(stream: str, max_age: float) -> js_api.StreamConfig:
    return js_api.StreamConfig(
        name=advisory_stream(stream),
        subjects=[advisory_subject(stream)],
        retention=js_api.RetentionPolicy.LIMITS,
        storage=js_api.StorageType.FILE,
        max_age=max_age,
    )


async def dead_letter_exhausted(
    js: JetStreamContext, stream: str, consumer: str, advisory: Msg, publish: Publish
) -> None:
    """Dead-letter the message ``advisory`` names (unless it is a dead letter itself or
    has left the stream), then ack the advisory. A failed publish leaves the advisory
    unacked, so it comes back."""
    data = json.loads(advisory.data)
    seq, num_delivered = int(data["stream_seq"]), int(data["deliveries"])
    try:
        stored = await js.get_msg(stream, seq)
    except Exception as exc:  # nats-py: NotFoundError once the stream's limits dropped it
        log.error("message seq=%s that %s gave up on is gone (%s): no dead letter",
                  seq, consumer, exc)
        await advisory.ack()
        return
    subject, payload = stored.subject or "", stored.data or b""
    if is_dead_letter_subject(subject):
        log.error("dropping dead letter seq=%s that %s never settled", seq, consumer)
    else:
        try:
            event: Event | None = decode_event(payload)
        except EventDecodeError:
            event = None
        reason = exhausted_reason(num_delivered)
        await publish(dead_letter_event(
            subject=subject, consumer=consumer, reason=reason, payload=payload,
            num_delivered=num_delivered, stream_sequence=seq, event=event,
        ))  # fmt: skip
        log.warning("dead-lettered %s seq=%s for %s: %s", subject, seq, consumer, reason)
    await advisory.ack()
