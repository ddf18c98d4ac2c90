"""DAPO dynamic sampling helpers: filter, bounded accumulator, metric."""

from __future__ import annotations

import pytest
import torch

from tentalis.training.sampling import (
    DynamicBatch,
    filter_zero_variance,
    is_zero_variance,
    zero_variance_fraction,
)


def test_filter_zero_variance_keeps_order_and_payload() -> None:
    groups = [
        ("a", [1.0, 0.0, 1.0], "payload-a"),
        ("b", [1.0, 1.0, 1.0], "payload-b"),  # all right: no signal
        ("c", torch.tensor([0.0, 0.0]), "payload-c"),  # all wrong: no signal
        ("d", torch.tensor([0.2, 0.7]), "payload-d"),
    ]
    kept, dropped = filter_zero_variance(groups)
    assert [g[0] for g in kept] == ["a", "d"]
    assert [g[0] for g in dropped] == ["b", "c"]
    assert kept[0] is groups[0]  # same objects, payload untouched


def test_is_zero_variance_edge_cases() -> None:
    assert is_zero_variance([])
    assert is_zero_variance([0.5])
    assert not is_zero_variance([0.5, 0.5000001])
    assert is_zero_variance([0.5, 0.5000001], atol=1e-6)


def test_zero_variance_fraction() -> None:
    # groups [1,0,0,1] (signal) and [1,1,1,1] (none) → 1 of 2
    rewards = torch.tensor([1.0, 0, 0, 1, 1, 1, 1, 1])
    assert zero_variance_fraction(rewards, 4) == 0.5
    # ids: group 5 = [1, 1], group 2 = [0, 0], group 9 = [0, 1] → 2 of 3
    ids = torch.tensor([5, 2, 9, 5, 2, 9])
    assert zero_variance_fraction(torch.tensor([1.0, 0, 0, 1, 0, 1]), ids) == pytest.approx(2 / 3)
    assert zero_variance_fraction(torch.tensor([]), torch.tensor([], dtype=torch.long)) == 0.0


def _round(*specs: tuple[str, list[float]]) -> list[tuple[str, list[float]]]:
    return list(specs)


def test_dynamic_batch_fills_across_rounds_with_overflow() -> None:
    batch: DynamicBatch[tuple[str, list[float]]] = DynamicBatch(target_groups=3, max_rounds=5)
    assert not batch.add(_round(("a", [1, 0]), ("b", [1, 1]), ("c", [0, 0])))
    assert batch.needed == 2 and batch.rounds == 1
    assert batch.add(_round(("d", [0, 1]), ("e", [1, 1]), ("f", [1, 0]), ("g", [0.5, 1])))
    assert batch.full and batch.done
    result = batch.result()
    assert result.complete and result.rounds == 2
    assert [g[0] for g in result.groups] == ["a", "d", "f"]
    assert [g[0] for g in result.overflow] == ["g"]
    assert [g[0] for g in result.dropped] == ["b", "c", "e"]
    with pytest.raises(RuntimeError, match="start a new DynamicBatch"):
        batch.add(_round(("h", [0, 1])))


def test_dynamic_batch_stops_at_round_bound_and_says_so() -> None:
    batch: DynamicBatch[tuple[str, list[float]]] = DynamicBatch(target_groups=4, max_rounds=2)
    assert not batch.add(_round(("a", [1, 1]), ("b", [0, 1])))
    assert batch.add(_round(("c", [0, 0])))  # bound reached, still short
    result = batch.result()
    assert not result.complete
    assert [g[0] for g in result.groups] == ["b"]
    assert result.rounds == 2 and len(result.dropped) == 2 and result.overflow == []


def test_dynamic_batch_validates() -> None:
    with pytest.raises(ValueError, match="≥ 1"):
        DynamicBatch(target_groups=0, max_rounds=1)
