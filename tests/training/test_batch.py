"""Batch preparation on hand-computed cases: validity, shaping, dynamic sampling, advantages,
token mask, micro-batch schedule and collation."""

from __future__ import annotations

import math

import torch

from tentalis.models.kv import MIN_SHARED_PREFIX
from tentalis.training import Rollout, RolloutGroup, TrainConfig
from tentalis.training.batch import (
    batched,
    collate,
    has_signal,
    prepare_batch,
    schedule,
    shaped,
    token_mask,
    valid_groups,
)


def ro(gid: str, reward: float, completion: list[int], *, prompt: list[int] | None = None,
       truncated: bool = False, behavior: list[float] | None = None) -> Rollout:
    return Rollout(
        rollout_id=f"{gid}-{reward}-{len(completion)}", group_id=gid, task_id=gid,
        prompt_ids=prompt or [1, 2], completion_ids=completion, reward=reward,
        truncated=truncated, behavior_logprobs=behavior,
    )


def cfg(**kw) -> TrainConfig:
    return TrainConfig(**({"step_reward_weight": 0.0, "overlong": "none"} | kw))


def test_valid_groups_drop_out_of_vocabulary_rollouts_and_emptied_groups() -> None:
    groups = [
        RolloutGroup("a", (ro("a", 1, [3, 4]), ro("a", 0, [3, 10]))),  # 10 ≥ vocab 10
        RolloutGroup("b", (ro("b", 1, [-1]),)),
    ]
    kept, dropped = valid_groups(groups, vocab_size=10)
    assert dropped == 2
    assert [(g.group_id, len(g)) for g in kept] == [("a", 1)]


def test_shaped_adds_the_soft_overlong_penalty_only_when_asked() -> None:
    # max_new_tokens 8, cache_len 4: no penalty up to 4 tokens, −1/4 per token after, −1 at 8
    group = RolloutGroup("a", (ro("a", 1, [5] * 4), ro("a", 1, [5] * 6), ro("a", 1, [5] * 8)))
    penalised = cfg(overlong="penalty", max_new_tokens=8, overlong_cache_len=4)
    assert shaped(group, penalised).rewards == [1.0, 0.5, 0.0]
    assert shaped(group, cfg()) is group
    assert has_signal(group, penalised) and not has_signal(group, cfg())


def test_prepare_batch_measures_raw_rewards_drops_flat_groups_and_normalises() -> None:
    groups = [
        RolloutGroup("a", (ro("a", 1, [5, 6, 7]), ro("a", 0, [5]))),
        RolloutGroup("b", (ro("b", 1, [5, 6]), ro("b", 1, [5, 6]))),  # no signal
    ]
    batch = prepare_batch(groups, cfg(dynamic_sampling=True), vocab_size=100)
    assert not batch.skip_reason
    assert batch.stats == {
        "invalid_rollouts": 0,
        "reward_mean": 0.75,
        "reward_std": math.sqrt(0.1875),  # population std of 1, 0, 1, 1
        "zero_variance_frac": 0.5,
        "groups_dropped": 1,
        "sequences": 2,
        "truncated_frac": 0.0,
    }
    # group "a": mean 0.5, std 0.5 (+ eps) → advantages +1, −1 on each completion token
    torch.testing.assert_close(
        batch.advantages, torch.tensor([[1.0, 1.0, 1.0], [-1.0, 0.0, 0.0]]), atol=1e-5, rtol=0
    )
    assert batch.mask.tolist() == [[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]]
    assert batch.num_items == 4

    kept = prepare_batch(groups, cfg(dynamic_sampling=False), vocab_size=100)
    assert len(kept.rollouts) == 4 and "groups_dropped" not in kept.stats


def test_prepare_batch_says_why_it_has_nothing_to_train_on() -> None:
    flat = [RolloutGroup("a", (ro("a", 1, [5]), ro("a", 1, [5])))]
    assert prepare_batch([], cfg(), vocab_size=100).skip_reason == "empty batch"
    assert "reward variance" in prepare_batch(flat, cfg(), vocab_size=100).skip_reason
    cut = [RolloutGroup("a", (ro("a", 1, [5], truncated=True), ro("a", 0, [5], truncated=True)))]
    batch = prepare_batch(cut, cfg(overlong="mask"), vocab_size=100)
    assert batch.skip_reason.startswith("no trainable token")
    assert batch.stats["truncated_frac"] == 1.0


def test_token_mask_covers_completions_and_masks_truncated_rows() -> None:
    rows = [ro("a", 1, [5, 6]), ro("a", 0, [5, 6, 7], truncated=True)]
    assert token_mask(rows, 3, "none").tolist() == [[1, 1, 0], [1, 1, 1]]
    assert token_mask(rows, 3, "mask").tolist() == [[1, 1, 0], [0, 0, 0]]


def test_schedule_runs_trainable_rows_longest_first() -> None:
    groups = [RolloutGroup("a", (
        ro("a", 1, [5]), ro("a", 0, [5, 6, 7]), ro("a", 1, [5, 6, 7, 8], truncated=True),
        ro("a", 0, [5, 6]),
    ))]
    batch = prepare_batch(groups, cfg(overlong="mask"), vocab_size=100)
    assert schedule(batch, 2) == ([0, 1, 3], [[1, 3], [0]])  # row 2 has no trainable token
    assert schedule(batch, 3, skip_untrainable=False) == ([0, 1, 2, 3], [[2, 1, 3], [0]])
    assert batched([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]


def test_collate_right_pads_rows_and_shares_group_prompts() -> None:
    prompt = list(range(10, 10 + MIN_SHARED_PREFIX + 2))
    rows = [
        ro("a", 1, [5, 6, 7], prompt=prompt, behavior=[-0.5, -0.25, -1.0]),
        ro("b", 0, [8], prompt=[*prompt[:-1], 99]),
        ro("a", 0, [9, 4], prompt=prompt),
    ]
    adv = torch.tensor([[1.0, 1.0, 1.0], [2.0, 0.0, 0.0], [3.0, 3.0, 0.0], [7.0, 7.0, 7.0]])
    mask = (adv != 0).float()
    mb = collate(rows, [0, 1, 2], adv, mask, pad_id=0, device=torch.device("cpu"))
    n = len(prompt)
    assert mb.input_ids.shape == (3, n + 3)
    assert mb.input_ids[1].tolist() == [*prompt[:-1], 99, 8, 0, 0]
    assert mb.attention_mask.sum(-1).tolist() == [n + 3, n + 1, n + 2]
    assert mb.prompt_len.tolist() == [n, n, n]
    assert mb.completion_ids.tolist() == [[5, 6, 7], [8, 0, 0], [9, 4, 0]]
    assert mb.advantages.tolist() == adv[:3].tolist()
    assert mb.has_behavior.tolist() == [True, False, False]
    assert mb.behavior[0].tolist() == [-0.5, -0.25, -1.0]
    assert mb.shared_prefix == n - 1  # all but the last prompt token of row 1
    assert (mb.distinct_prompts, mb.prompt_index) == ([0, 1], [0, 1, 0])
