"""``BridgeState``: what the bridge's routes share (bus, publisher, store, the tasks it
accepted that the store may not have yet)."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from tentalis.bus.base import Bus
from tentalis.events import TaskEvent
from tentalis.gateway.publisher import EventPublisher
from tentalis.store import ExperienceStore


class BridgeState:
    def __init__(self, bus: Bus, publisher: EventPublisher, store: ExperienceStore,
                 source: str) -> None:
        self.bus, self.publisher, self.store, self.source = bus, publisher, store, source
        self.submitted: OrderedDict[str, TaskEvent] = OrderedDict()

    def remember(self, task: TaskEvent) -> None:
        self.submitted[task.task_id] = task
        while len(self.submitted) > 10_000:
            self.submitted.popitem(last=False)

    def publish(self, event: Any) -> None:
        """Hand ``event`` to the publisher (started here when the app runs without a
        lifespan, as in-process test clients do)."""
        if not self.publisher.running:
            asyncio.get_running_loop().create_task(self.publisher.start())
        self.publisher.submit(event)
