"""Adapters, from the trainer's file to the answering engine, in one place.

The lifecycle every receiver follows (a worker into its inference client, the model
server into its served names):

1. **store** — :class:`AdapterStore` keeps each version once, atomically, with its sha256;
2. **verify** — :func:`apply_update` checks the sha256 of the files against the update's;
3. **load beside** — the new version is loaded next to the one serving requests;
4. **switch** — requests move to it between requests (:class:`ServedAdapters` unloads the
   old version after its last request);
5. **report** — the outcome is published as an ``AdapterLoadedEvent``.
"""

from __future__ import annotations

from tentalis.inference.adapters.served import AdapterNotFound, AdapterRequestError, ServedAdapters
from tentalis.inference.adapters.store import (
    AdapterStore,
    AdapterVersion,
    adapter_sha256,
    validate_adapter_name,
)
from tentalis.inference.adapters.updates import (
    apply_update,
    newest_updates,
    update_path,
    updates_spec,
)

__all__ = [
    "AdapterNotFound",
    "AdapterRequestError",
    "AdapterStore",
    "AdapterVersion",
    "ServedAdapters",
    "adapter_sha256",
    "apply_update",
    "newest_updates",
    "update_path",
    "updates_spec",
    "validate_adapter_name",
]
