"""Packing rollouts into right-padded micro-batches for one forward pass.

Each row is ``prompt ‖ completion``, right-padded to the longest row of the micro-batch; the
completion-aligned tensors (ids, mask, advantages, behaviour log-probs) are padded to the
longest completion. Position ``prompt_len − 1 + t`` of a row predicts its completion token t.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from tentalis.models.kv import distinct_keys, shareable_prefix
from tentalis.training.rollouts import Rollout


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
