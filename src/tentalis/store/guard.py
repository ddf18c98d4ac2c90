"""The reward-hacking guard's record in the experience store.

Guard events reach the store two ways, both idempotent by ``event_id``: the trainer
appends its own verdicts at once (so a pause survives a trainer restart even when no
recorder runs), and the recorder appends every event it sees on the bus.
A trainer's promotion is paused when its latest ``hard_stop``/``resumed`` record is a
``hard_stop``; warnings never pause anything.
"""

from __future__ import annotations

from tentalis.events import GuardEvent, decode_event
from tentalis.store.sqlite import ExperienceStore


class GuardLedger:
    """Read and write guard events of the experience store."""

    def __init__(self, store: ExperienceStore) -> None:
        self.store = store

    def record(self, event: GuardEvent) -> bool:
        """Append ``event``; False when it was already recorded."""
        return self.store.append([event]) == 1

    def history(self, trainer_id: str | None = None, limit: int = 50) -> list[GuardEvent]:
        """Guard events (of one trainer, or all), newest first."""
        rows = self.store.read(
            """SELECT e.payload FROM guard_events g JOIN events e ON e.event_id = g.event_id
               WHERE ?1 IS NULL OR g.trainer_id = ?1
               ORDER BY g.created_at DESC, g.event_id DESC LIMIT ?2""",
            (trainer_id, limit),
        )
        return [decode_event(r[0]) for r in rows]  # type: ignore[misc]

    def pause_state(self, trainer_id: str) -> GuardEvent | None:
        """The HARD_STOP that pauses ``trainer_id``'s promotion, or None when it is not
        paused (no HARD_STOP, or a ``resumed`` after the latest one)."""
        rows = self.store.read(
            """SELECT e.payload FROM guard_events g JOIN events e ON e.event_id = g.event_id
               WHERE g.trainer_id = ? AND g.level IN ('hard_stop', 'resumed')
               ORDER BY g.created_at DESC, g.event_id DESC LIMIT 1""",
            (trainer_id,),
        )
        if not rows:
            return None
        event = decode_event(rows[0][0])
        return event if isinstance(event, GuardEvent) and event.level == "hard_stop" else None

    def paused(self) -> dict[str, GuardEvent]:
        """Every trainer whose promotion is paused, with the HARD_STOP that paused it."""
        ids = [r[0] for r in self.store.read("SELECT DISTINCT trainer_id FROM guard_events")]
        out = {}
        for trainer_id in sorted(ids):
            event = self.pause_state(trainer_id)
            if event is not None:
                out[trainer_id] = event
        return out
