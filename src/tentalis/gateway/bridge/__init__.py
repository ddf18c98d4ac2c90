"""The bridge: HTTP ↔ NATS for agent runtimes that cannot speak NATS.

Writes (tasks, requests, feedback; their texts redacted) become events handed to an
:class:`EventPublisher`, so a call returns its id at once and a bus hiccup spools instead
of failing. Reads (task status, steps, scores, feedback; sessions; counts) come from the
experience store, which the recorder fills from the bus; a task the bridge accepted but
the store has not seen yet reads as ``submitted``. ``/v1/events`` relays live bus events
as Server-Sent Events.

A client may send ``Idempotency-Key`` with a write: the event id is derived from it, so a
retried call publishes the same event, which the bus and the store keep once.
"""

from __future__ import annotations

from tentalis.gateway.bridge.app import create_bridge_app
from tentalis.gateway.bridge.routes import bridge_state, router
from tentalis.gateway.bridge.state import BridgeState

__all__ = ["BridgeState", "bridge_state", "create_bridge_app", "router"]
