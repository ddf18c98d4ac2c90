"""A decode KV cache that writes into preallocated buffers instead of concatenating.

transformers' ``DynamicLayer`` appends each step's keys/values with ``torch.cat``, which
copies the whole cache of every layer on every token, a visible share of a CPU decode
(docs/measurements.md, "Decode cache copies"). :class:`BufferLayer` allocates room for the
whole decode once (prompt + ``max_new_tokens``) and writes each step into the next free
column; the model reads a view of the filled part. Dropping finished rows (``batch_select_indices``)
still copies the rows that stay, so the decode loop drops them in bunches
(:func:`tentalis.models.kv.worth_compacting`).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer


class BufferLayer(DynamicLayer):
    """One layer's keys/values in ``(B, H, capacity, D)`` buffers; ``keys``/``values``
    are views of the first ``length`` positions (what ``DynamicLayer`` would hold)."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self.length = 0
        self._k: torch.Tensor | None = None
        self._v: torch.Tensor | None = None

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        if self._k is None or end > self._k.shape[-2]:
            self._grow(key_states, value_states, max(end, self.capacity))
        assert self._k is not None and self._v is not None
        self._k[:, :, self.length:end] = key_states
        self._v[:, :, self.length:end] = value_states
        self.length = end
        self._publish()
        return self.keys, self.values

    def _grow(self, key_states: torch.Tensor, value_states: torch.Tensor, capacity: int) -> None:
        """(Re)allocate the buffers for ``capacity`` positions, keeping what is filled."""
        b, h, _, d = key_states.shape
        k = key_states.new_empty((b, h, capacity, d))
        v = value_states.new_empty((b, h, capacity, value_states.shape[-1]))
        if self._k is not None and self.length:
            k[:, :, : self.length] = self._k[:, :, : self.length]
            v[:, :, : self.length] = self._v[:, :, : self.length]  # type: ignore[index]
        self._k, self._v = k, v

    def _publish(self) -> None:
        assert self._k is not None and self._v is not None
        self.keys = self._k[:, :, : self.length]
        self.values = self._v[:, :, : self.length]

    def get_seq_length(self) -> int:
        return self.length

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.length and self._k is not None and self._v is not None:
            self._k = self._k.repeat_interleave(repeats, dim=0)
            self._v = self._v.repeat_interleave(repeats, dim=0)
            self._publish()

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep (or repeat: indices may recur) the rows ``indices``; copies the filled part."""
        if self.length and self._k is not None and self._v is not None:
            k = self._k.new_empty((len(indices), *self._k.shape[1:]))
            v = self._v.new_empty((len(indices), *self._v.shape[1:]))
            k[:, :, : self.length] = self._k[indices, :, : self.length]
            v[:, :, : self.length] = self._v[indices, :, : self.length]
            self._k, self._v = k, v
            self._publish()

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("BufferLayer does not crop")

    def reset(self) -> None:
        self.length = 0
        self._k = self._v = None
        self.keys = self.values = None
        self.is_initialized = False


def buffer_cache(config: Any, capacity: int) -> DynamicCache:
    """A ``DynamicCache`` whose layers are :class:`BufferLayer` of ``capacity`` positions
    (full-attention models only: a sliding-window layer keeps transformers' own type)."""
    cache = DynamicCache(config=config)
    cache.layers = [
        BufferLayer(capacity) if type(layer) is DynamicLayer else layer for layer in cache.layers
    ]
    return cache

