"""Key/value caches, shared by the decode loop (``inference.decoding``) and the trainer's
staged forward (``training.forward``): which prefix a batch can run once, which rows share a
prompt, the left-padded rests that run after a cached prefix, the prefix prefill itself, and
(:mod:`tentalis.models.kv.buffer`) a cache that writes into preallocated buffers.

``BufferLayer`` and ``buffer_cache`` import transformers; they load on first use, so
importing this package stays light.
"""

from __future__ import annotations

import inspect
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from tentalis.models.kv.buffer import BufferLayer, buffer_cache

__all__ = [
    "MIN_SHARED_PREFIX",
    "BufferLayer",
    "buffer_cache",
    "cache_keyword",
    "distinct_keys",
    "dynamic_cache",
    "left_padded",
    "prefill_prefix",
    "shareable_prefix",
    "shared_prefix_len",
    "worth_compacting",
]

#: Shorter common prefixes run per row: the saving would not pay for the extra forward call.
MIN_SHARED_PREFIX = 16


def cache_keyword(model: Any) -> str:
    """``cache`` (transformers ≥ 5.x, where ``past_key_values`` is deprecated) or
    ``past_key_values`` (older releases), whichever ``model``'s forward takes."""
    forward = type(model).forward
    return "cache" if "cache" in inspect.signature(forward).parameters else "past_key_values"


def shared_prefix_len(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the token prefix common to all ``sequences``, leaving at least one token
    of the shortest out (its last prompt token must still run: its logits predict the
    first completion token)."""
    if not sequences:
        return 0
    first = sequences[0]
    limit = min(len(s) for s in sequences) - 1
    n = 0
    while n < limit and all(s[n] == first[n] for s in sequences):
        n += 1
    return max(n, 0)


def shareable_prefix(sequences: Sequence[Sequence[int]]) -> int:
    """The prefix worth running once for all ``sequences``: :func:`shared_prefix_len` when
    there are at least two sequences and it is at least ``MIN_SHARED_PREFIX`` tokens, else 0."""
    if len(sequences) < 2:
        return 0
    n = shared_prefix_len(sequences)
    return n if n >= MIN_SHARED_PREFIX else 0


def distinct_keys(keys: Sequence[Hashable]) -> tuple[list[int], list[int]]:
    """``(first index of each distinct key, for every key the position of its key among
    those)``: rows with equal keys (a GRPO group's prompt) need to run it only once."""
    seen: dict[Hashable, int] = {}
    first: list[int] = []
    index: list[int] = []
    for i, key in enumerate(keys):
        if key not in seen:
            seen[key] = len(first)
            first.append(i)
        index.append(seen[key])
    return first, index


def left_padded(
    sequences: Sequence[Sequence[int]], pad_id: int, offset: int, device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(ids, attention, positions)``, each (n, longest): ``sequences`` left-padded so they
    all end at the last column, to run after ``offset`` cached positions (a shared prefix).
    A real token's position is ``offset`` + its index in its sequence; pads sit at ``offset``
    (masked out, their position is never seen)."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, seq in enumerate(sequences):
        if seq:
            ids[i, width - len(seq):] = torch.as_tensor(seq)
            attn[i, width - len(seq):] = 1
    ids, attn = ids.to(device), attn.to(device)
    return ids, attn, offset + (attn.cumsum(-1) - 1).clamp(min=0)


def dynamic_cache(config: Any) -> Any:
    """transformers' own ``DynamicCache`` for a model with ``config`` (grows by concatenation;
    what a pass that runs each stage once, like the trainer's, needs)."""
    from transformers import DynamicCache

    return DynamicCache(config=config)


def prefill_prefix(model: Any, cache: Any, prefix_ids: torch.Tensor, rows: int,
                   **forward_kwargs: Any) -> Any:
    """Run ``prefix_ids`` (1, P) through ``model`` into ``cache`` and repeat its keys/values
    for ``rows`` rows; returns what ``model`` returned (``forward_kwargs`` go to it)."""
    out = model(input_ids=prefix_ids, use_cache=True, **forward_kwargs,
                **{cache_keyword(model): cache})
    cache.batch_repeat_interleave(rows)
    return out


def worth_compacting(finished: int, batch: int) -> bool:
    """Drop finished rows from the batch once they are at least an eighth of it: each
    drop copies the cache of the rows that stay, each finished row left in costs one row
    of every forward."""
    return finished > 0 and finished * 8 >= batch


def __getattr__(name: str) -> Any:
    if name in ("BufferLayer", "buffer_cache"):
        from tentalis.models.kv import buffer

        return getattr(buffer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
