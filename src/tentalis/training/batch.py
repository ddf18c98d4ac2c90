"""Batch preparation: from scored rollout groups to the rows, advantages and token mask one
step trains on, and the micro-batches that carry them. Pure functions, tensors and records
in and out; :class:`~tentalis.training.trainer.PolicyTrainer` calls them in this order::

    valid_groups      drop rollouts with token ids outside the vocabulary
    shaped            rewards + DAPO soft overlong penalty (overlong='penalty')
    informative       groups with a non-zero advantage somewhere (dynamic sampling keeps them)
    prepare_batch     the above, then advantages (B, T) and the trainable-token mask (B, T)
    schedule          rows to run, longest first, in micro-batches
    collate           one micro-batch as padded tensors

Each micro-batch row is ``prompt ‖ completion``, right-padded to the longest row of the
micro-batch; the completion-aligned tensors (ids, mask, advantages, behaviour log-probs) are
padded to the longest completion. Position ``prompt_len − 1 + t`` of a row predicts its
completion token t.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from tentalis.config.training import TrainConfig
from tentalis.models.kv import distinct_keys, shareable_prefix
from tentalis.training.losses import overlong_mask, soft_overlong_penalty
from tentalis.training.rollouts import Rollout, RolloutGroup, rollout_advantages
from tentalis.training.sampling import zero_variance_fraction


@dataclass
class MicroBatch:
    """Rows of one forward pass, on the trainer's device."""

    input_ids: torch.Tensor  # (b, L) prompt ‖ completion, right-padded
    attention_mask: torch.Tensor  # (b, L)
    prompt_len: torch.Tensor  # (b,)
    completion_ids: torch.Tensor  # (b, Tc)
    mask: torch.Tensor  # (b, Tc) trainable completion tokens
    advantages: torch.Tensor  # (b, Tc)
    behavior: torch.Tensor  # (b, Tc) worker log-probs (0 where absent)
    has_behavior: torch.Tensor  # (b,) bool
    shared_prefix: int = 0  # leading tokens to run once for every row (kv.shareable_prefix)
    # rows with the same prompt (a group's samples): the first row of each distinct prompt,
    # and for every row the index of its prompt among those (kv.distinct_keys)
    distinct_prompts: list[int] = field(default_factory=list)
    prompt_index: list[int] = field(default_factory=list)


def batched(items: Sequence[int], n: int) -> list[list[int]]:
    """Consecutive chunks of ``n`` (the last may be shorter)."""
    items = list(items)
    return [items[i : i + n] for i in range(0, len(items), n)]


def pad_cols(x: torch.Tensor, width: int) -> torch.Tensor:
    """(b, T) → (b, width): cut or zero-pad columns."""
    if x.shape[1] >= width:
        return x[:, :width]
    return torch.nn.functional.pad(x, (0, width - x.shape[1]))


def collate(
    rollouts: Sequence[Rollout],
    rows: Sequence[int],
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    pad_id: int,
    device: torch.device,
) -> MicroBatch:
    """Micro-batch of ``rollouts[rows]``; ``advantages`` and ``mask`` are the step's (B, T)."""
    chosen = [rollouts[i] for i in rows]
    b = len(chosen)
    seq_len = max(r.num_tokens for r in chosen)
    tc = max(1, max(len(r.completion_ids) for r in chosen))
    input_ids = torch.full((b, seq_len), pad_id, dtype=torch.long)
    attention = torch.zeros((b, seq_len), dtype=torch.long)
    completion = torch.zeros((b, tc), dtype=torch.long)
    behavior = torch.zeros((b, tc))
    for j, r in enumerate(chosen):
        n, c = r.num_tokens, len(r.completion_ids)
        input_ids[j, :n] = torch.tensor(r.prompt_ids + r.completion_ids)
        attention[j, :n] = 1
        completion[j, :c] = torch.tensor(r.completion_ids)
        if r.behavior_logprobs is not None:
            behavior[j, :c] = torch.tensor(r.behavior_logprobs)
    index = torch.tensor(list(rows))
    distinct, prompt_index = distinct_keys([tuple(r.prompt_ids) for r in chosen])
    return MicroBatch(
        input_ids=input_ids.to(device),
        attention_mask=attention.to(device),
        prompt_len=torch.tensor([len(r.prompt_ids) for r in chosen], device=device),
        completion_ids=completion.to(device),
        mask=pad_cols(mask[index], tc).to(device),
        advantages=pad_cols(advantages[index], tc).to(device),
        behavior=behavior.to(device),
        has_behavior=torch.tensor([r.behavior_logprobs is not None for r in chosen], device=device),
        shared_prefix=shareable_prefix([r.prompt_ids for r in chosen]),
        distinct_prompts=distinct,
        prompt_index=prompt_index,
    )


# --------------------------------------------------------------------------- the step's rows


@dataclass
class PreparedBatch:
    """The rows one step trains on. ``stats`` are :class:`~tentalis.training.metrics.StepMetrics`
    fields measured on the way; ``skip_reason`` is set when there is nothing to train on
    (then the tensors are empty)."""

    rollouts: list[Rollout] = field(default_factory=list)  # B rows, group by group
    # (B, T) per completion token, 0 where the mask is 0
    advantages: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 0))
    mask: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 0))  # (B, T) trainable
    stats: dict[str, Any] = field(default_factory=dict)
    skip_reason: str = ""

    @property
    def num_items(self) -> int:
        """Trainable completion tokens of the whole batch."""
        return int(self.mask.sum())


def valid_groups(groups: Sequence[RolloutGroup], vocab_size: int) -> tuple[list[RolloutGroup], int]:
    """``(groups without the rollouts whose token ids fall outside [0, vocab_size), how many
    were removed)``; a group left empty goes. A bad rollout is data (counted), not a crash."""
    out, dropped = [], 0
    for g in groups:
        ok = tuple(r for r in g.rollouts if _ids_in_range(r, vocab_size))
        dropped += len(g.rollouts) - len(ok)
        if ok:
            out.append(RolloutGroup(g.group_id, ok))
    return out, dropped


def shaped(group: RolloutGroup, config: TrainConfig) -> RolloutGroup:
    """``group`` with the rewards ``config`` trains on: the soft overlong penalty added to
    each reward when ``overlong='penalty'``, otherwise unchanged."""
    if config.overlong != "penalty":
        return group
    assert config.max_new_tokens is not None and config.cache_len is not None
    lengths = torch.tensor([len(r.completion_ids) for r in group.rollouts])
    penalty = soft_overlong_penalty(lengths, config.max_new_tokens, config.cache_len).tolist()
    rollouts = tuple(
        replace(r, reward=r.reward + p) for r, p in zip(group.rollouts, penalty, strict=True)
    )
    return RolloutGroup(group.group_id, rollouts)


def has_signal(group: RolloutGroup, config: TrainConfig) -> bool:
    """Whether ``group`` gets a non-zero advantage anywhere (what dynamic sampling keeps),
    judged on the shaped rewards: equal outcomes whose lengths earn different overlong
    penalties still count."""
    return shaped(group, config).has_signal(config.step_reward_weight)


def token_mask(rollouts: Sequence[Rollout], width: int, overlong: str) -> torch.Tensor:
    """(B, width): 1 on each completion's tokens; a truncated row all 0 when
    ``overlong='mask'``."""
    lengths = torch.tensor([len(r.completion_ids) for r in rollouts])  # (B,)
    mask = (torch.arange(width)[None] < lengths[:, None]).float()  # (B, T)
    if overlong == "mask":
        mask = overlong_mask(torch.tensor([r.truncated for r in rollouts]), mask)
    return mask


def prepare_batch(
    groups: Sequence[RolloutGroup], config: TrainConfig, *, vocab_size: int
) -> PreparedBatch:
    """Everything one step needs before the forward pass (see the module docstring).

    Rewards are measured before shaping (what the workers earned); dynamic sampling drops
    the groups without signal only when ``config.dynamic_sampling``, but a batch where no
    group has signal is skipped either way (every advantage would be 0)."""
    groups, invalid = valid_groups(groups, vocab_size)
    stats: dict[str, Any] = {"invalid_rollouts": invalid}
    received = [r for g in groups for r in g.rollouts]
    if not received:
        return PreparedBatch(stats=stats, skip_reason="empty batch")
    raw = torch.tensor([r.reward for r in received], dtype=torch.float64)
    stats["reward_mean"] = float(raw.mean())
    stats["reward_std"] = float(raw.std(correction=0))
    stats["zero_variance_frac"] = zero_variance_fraction(raw, [r.group_id for r in received])
    groups = [shaped(g, config) for g in groups]
    informative = [g for g in groups if g.has_signal(config.step_reward_weight)]
    if not informative:
        return PreparedBatch(
            stats=stats, skip_reason="no group has reward variance (every advantage is 0)"
        )
    if config.dynamic_sampling:
        stats["groups_dropped"] = len(groups) - len(informative)
        groups = informative
    rollouts = [r for g in groups for r in g.rollouts]
    _, adv = rollout_advantages(
        rollouts, advantage=config.advantage, step_reward_weight=config.step_reward_weight
    )  # (B, T)
    mask = token_mask(rollouts, adv.shape[1], config.overlong)
    stats["sequences"] = len(rollouts)
    stats["truncated_frac"] = float(torch.tensor([r.truncated for r in rollouts]).float().mean())
    batch = PreparedBatch(rollouts, adv * mask, mask, stats)
    if batch.num_items == 0:
        batch.skip_reason = "no trainable token (every completion truncated and masked)"
    return batch


def schedule(
    batch: PreparedBatch, micro_batch_size: int, *, skip_untrainable: bool = True
) -> tuple[list[int], list[list[int]]]:
    """``(live rows, micro-batches of them)``: rows sorted longest first (less padding). A row
    with no trainable token adds 0 to every loss type's sum, and the micro-batch weights
    count all B rows, so with ``skip_untrainable`` it does not run at all."""
    live = [i for i in range(len(batch.rollouts)) if batch.mask[i].any() or not skip_untrainable]
    order = sorted(live, key=lambda i: -batch.rollouts[i].num_tokens)
    return live, batched(order, micro_batch_size)


def _ids_in_range(rollout: Rollout, vocab_size: int) -> bool:
    ids = rollout.prompt_ids + rollout.completion_ids
    return min(ids) >= 0 and max(ids) < vocab_size
