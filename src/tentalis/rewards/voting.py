"""Aggregating m independent judgements of one item (majority voting).

Votes are scores in [0, 1]; a vote is *positive* when it is ``>= threshold`` (0.5).

* ``vote`` (majority): 1.0 when more votes are positive than not, 0.0 when fewer, 0.5 on
  a tie — the judge could not make up its mind.
* ``mean``: the mean of the votes (keeps the judge's own graded scores).

``agreement`` is the share of votes on the majority side, ``max(pos, neg) / m``: 1.0 when
the votes are unanimous, 0.5 for an even split. It is the same for both methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tentalis.config.judge import Aggregate


@dataclass(frozen=True)
class VoteResult:
    """The aggregate of one item's votes."""

    score: float
    agreement: float
    votes: int
    positive: int


def aggregate_votes(
    scores: Sequence[float], method: Aggregate = "vote", threshold: float = 0.5
) -> VoteResult | None:
    """Aggregate ``scores`` by ``method``; None when there are no votes to aggregate."""
    if method not in ("vote", "mean"):
        raise ValueError(f"unknown aggregate {method!r}; use 'vote' or 'mean'")
    n = len(scores)
    if n == 0:
        return None
    positive = sum(s >= threshold for s in scores)
    negative = n - positive
    if method == "mean":
        score = sum(scores) / n
    elif positive != negative:
        score = 1.0 if positive > negative else 0.0
    else:
        score = 0.5
    return VoteResult(
        score=min(1.0, max(0.0, score)),
        agreement=max(positive, negative) / n,
        votes=n,
        positive=positive,
    )
