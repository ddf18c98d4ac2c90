"""KV-cache helpers: the cache keyword of a model's ``forward``, and the token prefix a
batch can compute once and share."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

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
