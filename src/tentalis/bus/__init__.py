"""The message bus: durable events on NATS JetStream, consumers, and an embedded server.

``MemoryBus`` (a test double with the same semantics) lives in ``tentalis.bus.memory`` and
is deliberately not exported here.
"""

from tentalis.bus.base import Bus, BusInfo, ConsumerInfo, ConsumerSpec, Delivery
from tentalis.bus.consumer import run_batch_consumer, run_consumer
from tentalis.bus.embedded import EmbeddedNats, resolve_nats
from tentalis.bus.nats import NatsBus

__all__ = [
    "Bus",
    "BusInfo",
    "ConsumerInfo",
    "ConsumerSpec",
    "Delivery",
    "EmbeddedNats",
    "NatsBus",
    "resolve_nats",
    "run_batch_consumer",
    "run_consumer",
]
