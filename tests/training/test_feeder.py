"""Sizing the feeder's sampling rounds (dynamic sampling that fills a step in one round)."""

from __future__ import annotations

from tentalis.config.training import TrainConfig
from tentalis.envs import get_environment
from tentalis.training.feeder import round_size, training_round

CFG = TrainConfig(prompts_per_step=4, group_size=4)


def test_round_size_scales_the_missing_groups_by_the_useful_share() -> None:
    assert round_size(CFG, ready=0, useful=0, dropped=0) == 4  # no history: one step's worth
    assert round_size(CFG, ready=0, useful=40, dropped=0) == 4  # everything useful
    assert round_size(CFG, ready=0, useful=10, dropped=10) == 8  # half dropped: twice as many
    assert round_size(CFG, ready=3, useful=10, dropped=10) == 2  # three groups already wait
    assert round_size(CFG, ready=0, useful=0, dropped=50) == 16  # capped at 4 × P
    assert round_size(CFG, ready=0, useful=0, dropped=50, max_factor=2) == 8
    assert round_size(CFG, ready=6, useful=1, dropped=1) == 4  # step already full


def test_a_round_fans_each_prompt_out_group_size_times() -> None:
    tasks = training_round(CFG, 3, prompts=6, seed=1, max_new_tokens=32, level="addition")
    assert len(tasks) == 6 * 4
    groups = {t.group_id for t in tasks}
    assert len(groups) == 6
    for g in groups:
        members = [t for t in tasks if t.group_id == g]
        assert len({t.prompt for t in members}) == 1
        assert sorted(t.sample_index for t in members) == [0, 1, 2, 3]
    heldout = {s.prompt for s in get_environment("math").generate(200, split="heldout", seed=1,
                                                                    level="addition")}
    assert not heldout & {t.prompt for t in tasks}  # training rounds never touch held-out
    default = training_round(CFG, 3, seed=1, max_new_tokens=32, level="addition")
    assert len(default) == CFG.prompts_per_step * 4
