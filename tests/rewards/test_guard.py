"""Reward-hacking guard: statistics against hand-computed cases, verdicts on synthetic traces."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from tentalis.config import Settings
from tentalis.rewards.guard import (
    GuardConfig,
    GuardLevel,
    GuardVerdict,
    Observation,
    RewardHackingGuard,
    scorer_pair,
)
from tentalis.rewards.guard.stats import histogram, kl_divergence, length_z, spearman

SMALL = GuardConfig(warmup=16, window=16, check_every=4, min_pairs=8)


def _run(guard: RewardHackingGuard, trace: Iterator[Observation]) -> list[GuardVerdict]:
    return [v for o in trace if (v := guard.observe(o)) is not None]


def _clean(rng: random.Random, n: int) -> Iterator[Observation]:
    """Stable policy: lengths ~ N(40, 8), rewards from a fixed mix of 0, 0.3, 0.6, 1."""
    for _ in range(n):
        reward = rng.choices([0.0, 0.3, 0.6, 1.0], [0.45, 0.15, 0.1, 0.3])[0]
        yield Observation(max(1, round(rng.gauss(40, 8))), reward)


def _length_hack(rng: random.Random, n: int, start: int) -> Iterator[Observation]:
    """From ``start`` on, completions grow 0.5 token per rollout and a length-loving scorer
    pays for it."""
    for i in range(n):
        length = max(1, round(rng.gauss(40 + 0.5 * max(0, i - start), 8)))
        yield Observation(length, min(1.0, max(0.0, length / 120 + rng.gauss(0, 0.05))))


# --- statistics ---------------------------------------------------------------------------
def test_histogram_is_smoothed_and_normalised() -> None:
    p = histogram([0.0, 0.05, 1.0, 1.0], bins=2, alpha=0.5)
    # counts (2, 2) + 0.5 each, over 4 + 1
    assert p == pytest.approx([0.5, 0.5])
    q = histogram([1.0, 1.0, 1.0], bins=4, alpha=1.0)
    assert q == pytest.approx([1 / 7, 1 / 7, 1 / 7, 4 / 7]) and sum(q) == pytest.approx(1.0)


def test_kl_divergence_hand_case() -> None:
    assert kl_divergence([0.5, 0.5], [0.5, 0.5]) == 0.0
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl_divergence([0.5, 0.5], [0.25, 0.75]) == pytest.approx(expected)
    assert kl_divergence([1.0, 0.0], [0.0, 1.0]) == math.inf
    with pytest.raises(ValueError, match="differ in length"):
        kl_divergence([1.0], [0.5, 0.5])


def test_spearman_hand_cases() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ties take their average rank: x ranks (1.5, 1.5, 3), y ranks (1, 2, 3)
    assert spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(0.8660254)
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    assert spearman([1], [2]) is None


def test_length_z_uses_baseline_std_with_a_one_token_floor() -> None:
    assert length_z([50, 50], base_mean=40, base_std=4) == pytest.approx(2.5)
    assert length_z([42], base_mean=40, base_std=0) == pytest.approx(2.0)


def test_bad_observations_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="length"):
        Observation(-1, 0.5)
    with pytest.raises(ValueError, match="reward"):
        Observation(3, 1.5)
    with pytest.raises(ValueError, match="judge"):
        Observation(3, 0.5, cheap=0.1, judge=math.nan)


def test_scorer_pair_from_components() -> None:
    assert scorer_pair({"judge": 0.2, "verifier": 1.0, "format": 0.6}, "judge", None) == (
        pytest.approx(0.8), 0.2)
    assert scorer_pair({"judge": 0.2, "verifier": 1.0}, "judge", "verifier") == (1.0, 0.2)
    assert scorer_pair({"verifier": 1.0}, "judge", None) == (None, None)
    assert scorer_pair({"judge": 0.5}, "judge", None) == (None, None)
    assert scorer_pair({"judge": "x", "v": 1.0}, "judge", None) == (None, None)


# --- configuration ------------------------------------------------------------------------
def test_settings_defaults_match_the_config_defaults() -> None:
    assert Settings(_env_file=None).guard == GuardConfig()


def test_inconsistent_config_says_what_to_change() -> None:
    with pytest.raises(ValidationError, match="GUARD_MIN_PAIRS"):
        GuardConfig(warmup=8, window=8, min_pairs=16)


# --- verdicts -----------------------------------------------------------------------------
def test_length_hacking_trace_trips_a_hard_stop_with_its_numbers() -> None:
    guard = RewardHackingGuard(GuardConfig())
    verdicts = _run(guard, _length_hack(random.Random(0), 600, start=150))
    assert all(v.level is GuardLevel.OK for v in verdicts if v.observations <= 150)
    stop = next(v for v in verdicts if v.level is GuardLevel.HARD_STOP)
    fired = {s.name for s in stop.fired}
    assert {"length_drift", "reward_kl"} <= fired
    numbers = stop.numbers()
    assert numbers["length_drift"] > 2.5
    assert numbers["length_drift.window_mean"] > numbers["length_drift.baseline_mean"]
    assert numbers["reward_kl"] > 0.15
    assert "σ" in stop.reason and "KL" in stop.reason


@pytest.mark.parametrize("seed", range(5))
def test_clean_trace_stays_quiet(seed: int) -> None:
    guard = RewardHackingGuard(GuardConfig())
    verdicts = _run(guard, _clean(random.Random(seed), 600))
    assert len(verdicts) > 20  # it did check, many times
    assert [v.level for v in verdicts] == [GuardLevel.OK] * len(verdicts)


def test_rising_rewards_alone_warn_but_never_stop() -> None:
    """Genuine learning moves the reward distribution too: one signal only warns."""
    rng = random.Random(1)

    def learning() -> Iterator[Observation]:
        for i in range(600):
            right = rng.random() < 0.1 + 0.8 * i / 600
            yield Observation(max(1, round(rng.gauss(40, 8))), 1.0 if right else 0.0)

    levels = {v.level for v in _run(RewardHackingGuard(GuardConfig()), learning())}
    assert GuardLevel.WARNING in levels and GuardLevel.HARD_STOP not in levels


def _divergent(n: int, start: int) -> Iterator[Observation]:
    """The cheap scorer tracks the judge, then from ``start`` on pays 1.0 whatever the judge
    says (the judge itself keeps varying)."""
    rng = random.Random(2)
    for i in range(n):
        judge = rng.random()
        cheap = 1.0 if i >= start else min(1.0, max(0.0, judge + rng.gauss(0, 0.05)))
        yield Observation(max(1, round(rng.gauss(40, 8))), 0.5, cheap=cheap, judge=judge)


def test_cheap_scorer_drifting_from_the_judge_warns_then_escalates() -> None:
    verdicts = _run(RewardHackingGuard(SMALL), _divergent(120, start=40))
    warn = next(v for v in verdicts if v.level is not GuardLevel.OK)
    assert warn.level is GuardLevel.WARNING and warn.observations > 40
    assert [s.name for s in warn.fired] == ["scorer_divergence"]
    assert warn.numbers()["scorer_divergence.gap"] > warn.numbers()[
        "scorer_divergence.baseline_gap"] + 0.25
    escalating = RewardHackingGuard(SMALL.model_copy(update={"escalate_after": 3}))
    stop = next(v for v in _run(escalating, _divergent(120, start=40))
                if v.level is GuardLevel.HARD_STOP)
    assert stop.streak == 3 and "persisted for 3 checks" in stop.reason


def test_divergence_is_not_judged_without_paired_scores() -> None:
    guard = RewardHackingGuard(SMALL)
    verdicts = _run(guard, _clean(random.Random(3), 64))
    reading = next(s for s in verdicts[-1].signals if s.name == "scorer_divergence")
    assert not reading.fired and reading.value is None and "not judged" in reading.message


def test_reset_starts_a_new_warm_up_and_disabled_guard_says_nothing() -> None:
    guard = RewardHackingGuard(SMALL)
    assert _run(guard, _length_hack(random.Random(4), 60, start=16))
    guard.reset()
    assert guard.baseline is None and _run(guard, _clean(random.Random(5), 16)) == []
    assert guard.baseline is not None
    off = RewardHackingGuard(GuardConfig(enabled=False))
    assert _run(off, _length_hack(random.Random(4), 300, start=16)) == []
