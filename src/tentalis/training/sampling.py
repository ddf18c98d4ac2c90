"""DAPO dynamic sampling: keep only rollout groups that carry a learning signal.

A group whose completions all scored the same (all right, all wrong) has zero advantage for
every member under any group baseline, so it adds nothing to the gradient but still dilutes
the batch. DAPO over-samples and drops such groups until the batch holds ``target_groups``
informative ones. Here that is split into a pure filter and a small bounded accumulator the
caller feeds round by round, so the sampling loop itself stays in the trainer and the policy
("how many rounds before we train on what we have") is explicit and testable.

A *group* is any tuple whose first item is the group id and second its rewards (a sequence of
floats or a 1-D tensor); further items (completions, token ids, …) ride along untouched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import torch

from tentalis.training.losses import Groups, group_index

G = TypeVar("G", bound=tuple)


def is_zero_variance(rewards: Sequence[float] | torch.Tensor, atol: float = 0.0) -> bool:
    """True when ``max(rewards) − min(rewards) ≤ atol`` (an empty group counts as zero)."""
    values = torch.as_tensor(rewards, dtype=torch.float64).flatten()
    if values.numel() == 0:
        return True
    return bool(values.max() - values.min() <= atol)


def filter_zero_variance(groups: Iterable[G], *, atol: float = 0.0) -> tuple[list[G], list[G]]:
    """Split groups into ``(kept, dropped)``, dropped = zero reward variance; order kept."""
    kept: list[G] = []
    dropped: list[G] = []
    for group in groups:
        (dropped if is_zero_variance(group[1], atol) else kept).append(group)
    return kept, dropped


def zero_variance_fraction(rewards: torch.Tensor, groups: Groups) -> float:
    """Fraction of groups (not rows) whose rewards are all equal, for metrics; 0.0 if empty.

    ``rewards`` is (B,); ``groups`` is a group size or per-row ids, as in ``group_advantages``.
    """
    if rewards.numel() == 0:
        return 0.0
    rewards = rewards.detach().to(torch.float64)  # (B,)
    index, n = group_index(groups, rewards.shape[0], rewards.device)
    hi = rewards.new_full((n,), -torch.inf).scatter_reduce(0, index, rewards, reduce="amax")
    lo = rewards.new_full((n,), torch.inf).scatter_reduce(0, index, rewards, reduce="amin")
    return float((hi == lo).double().mean())


@dataclass(frozen=True)
class DynamicBatchResult(Generic[G]):
    """What a :class:`DynamicBatch` collected.

    ``groups``: informative groups, at most ``target_groups``, in arrival order.
    ``complete``: True when ``groups`` reached the target; False when the round bound hit first.
    ``rounds``: sampling rounds fed. ``dropped``: zero-variance groups filtered out (keep them
    for the ledger). ``overflow``: informative groups beyond the target from the last round,
    which the caller may carry into the next batch instead of wasting them.
    """

    groups: list[G]
    complete: bool
    rounds: int
    dropped: list[G] = field(default_factory=list)
    overflow: list[G] = field(default_factory=list)


class DynamicBatch(Generic[G]):
    """Bounded accumulator for DAPO dynamic sampling.

    >>> batch = DynamicBatch(target_groups=8, max_rounds=4)
    >>> while not batch.done:                      # doctest: +SKIP
    ...     batch.add(sample_groups(batch.needed))
    >>> result = batch.result()                    # result.complete says whether it filled

    Each :meth:`add` is one sampling round. The batch is ``done`` when it holds
    ``target_groups`` informative groups or after ``max_rounds`` rounds, whichever comes
    first; then :meth:`result` returns what it has and whether it is complete.
    """

    def __init__(self, target_groups: int, max_rounds: int, *, atol: float = 0.0) -> None:
        if target_groups < 1 or max_rounds < 1:
            raise ValueError(
                f"target_groups and max_rounds must be ≥ 1, got {target_groups}, {max_rounds}"
            )
        self.target_groups = target_groups
        self.max_rounds = max_rounds
        self.atol = atol
        self._groups: list[G] = []
        self._dropped: list[G] = []
        self._overflow: list[G] = []
        self._rounds = 0

    @property
    def rounds(self) -> int:
        return self._rounds

    @property
    def needed(self) -> int:
        """Informative groups still missing."""
        return self.target_groups - len(self._groups)

    @property
    def full(self) -> bool:
        return self.needed == 0

    @property
    def done(self) -> bool:
        """Full, or out of rounds: stop sampling and call :meth:`result`."""
        return self.full or self._rounds >= self.max_rounds

    def add(self, groups: Iterable[G]) -> bool:
        """Feed one round of sampled groups; returns :attr:`done`."""
        if self.done:
            raise RuntimeError(
                f"DynamicBatch is already done ({len(self._groups)}/{self.target_groups} groups "
                f"after {self._rounds} rounds); call result() and start a new DynamicBatch"
            )
        kept, dropped = filter_zero_variance(groups, atol=self.atol)
        room = self.needed
        self._groups.extend(kept[:room])
        self._overflow.extend(kept[room:])
        self._dropped.extend(dropped)
        self._rounds += 1
        return self.done

    def result(self) -> DynamicBatchResult[G]:
        return DynamicBatchResult(
            groups=list(self._groups),
            complete=self.full,
            rounds=self._rounds,
            dropped=list(self._dropped),
            overflow=list(self._overflow),
        )
