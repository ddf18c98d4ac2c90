"""Live events over Server-Sent Events: the bus's ``listen`` view, relayed to HTTP.

Delivery is what ``Bus.listen`` gives: live and at-most-once (a client that connects late
or reads too slowly misses events; the store keeps them all). A client that falls more
than ``queue_size`` events behind gets a ``: dropped N`` comment instead of the oldest.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from tentalis.bus.base import Bus
from tentalis.events import Event, Subjects
from tentalis.gateway.security import redact

SUBJECT_ALIASES: dict[str, str] = {
    "all": Subjects.ALL,
    "task": Subjects.TASKS_ALL,
    "result": Subjects.RESULTS_ALL,
    "score": Subjects.SCORES_ALL,
    "feedback": Subjects.FEEDBACK_ALL,
    "session": Subjects.SESSION,
    "session_link": Subjects.SESSION_LINK,
    "model_update": Subjects.MODEL_UPDATE,
    "dead_letter": Subjects.DEAD_LETTER,
}


def parse_subjects(text: str) -> list[str]:
    """``task,score`` → subjects; raises ValueError naming what is accepted."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SUBJECT_ALIASES]
    if not names or unknown:
        raise ValueError(f"subjects must be a comma-separated list of: "
                         f"{', '.join(SUBJECT_ALIASES)}")
    return list(dict.fromkeys(SUBJECT_ALIASES[n] for n in names))


def sse_frame(event: Event) -> bytes:
    data = redact(event.model_dump_json())
    return f"id: {event.event_id}\nevent: {event.kind}\ndata: {data}\n\n".encode()


async def event_stream(
    bus: Bus,
    subjects: list[str],
    disconnected: Callable[[], object],
    *,
    max_events: int | None = None,
    keepalive_s: float = 15.0,
    queue_size: int = 1000,
) -> AsyncIterator[bytes]:
    """SSE frames for events on ``subjects`` until the client leaves (or ``max_events``)."""
    queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=queue_size)
    dropped = 0

    async def on_event(event: Event) -> None:
        nonlocal dropped
        if queue.full():
            queue.get_nowait()
            dropped += 1
        queue.put_nowait(event)

    stop = await bus.listen(subjects, on_event)
    sent = 0
    try:
        yield b": listening\n\n"
        while max_events is None or sent < max_events:
            try:
                event = await asyncio.wait_for(queue.get(), keepalive_s)
            except TimeoutError:
                if await disconnected():  # type: ignore[misc]
                    return
                yield b": keepalive\n\n"
                continue
            if dropped:
                yield f": dropped {dropped}\n\n".encode()
                dropped = 0
            yield sse_frame(event)
            sent += 1
    finally:
        with contextlib.suppress(Exception):
            await stop()
