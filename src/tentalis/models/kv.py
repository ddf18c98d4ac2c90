"""KV-cache helpers: the cache keyword of a model's ``forward``, the token prefix a batch
can compute once and share, and the rows whose prompts can run once between them."""

from __future__ import annotations

import inspect
from collections.abc import Hashable, Sequence
from typing import Any

import torch

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
