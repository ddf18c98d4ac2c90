"""Recorder: writes every event on the bus into the experience store.

It reads all event subjects as the durable consumer ``recorder`` in batches and acks a
batch only after the SQLite transaction holding it has committed, so nothing acked is
ever missing from the ledger. The store ignores an event_id it already has, so a
redelivered batch is harmless.
"""

from __future__ import annotations

import asyncio

from tentalis.bus.base import ConsumerSpec, Delivery
from tentalis.events import Subjects
from tentalis.store import ExperienceStore


class Recorder:
    def __init__(self, store: ExperienceStore, *, batch: int = 256, max_deliver: int = 5) -> None:
        self.store = store
        self.spec = ConsumerSpec(
            name="recorder", subjects=[Subjects.ALL], batch=batch, max_deliver=max_deliver,
            fetch_timeout=0.2,
        )
        self.recorded = 0

    async def handle_batch(self, deliveries: list[Delivery]) -> None:
        """Append the batch in one transaction (acks happen after this returns)."""
        events = [d.event for d in deliveries]
        self.recorded += await asyncio.to_thread(self.store.append, events)
