"""The per-row sampler of the batched decode loop."""

from __future__ import annotations

import torch

from tentalis.inference.decoding import _sample


def _draw(logits: torch.Tensor, temp: float, top_p: float, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` independent draws from one row (each draw its own generator)."""
    rows = logits.expand(n, -1)
    gens = [torch.Generator().manual_seed(seed + i) for i in range(n)]
    return _sample(rows, torch.full((n,), temp), torch.full((n,), top_p), gens)


def test_frequencies_follow_the_softmax_of_the_tempered_logits() -> None:
    logits = torch.tensor([[0.0, 1.0, 2.0, -1.0]])
    picks = _draw(logits, temp=0.7, top_p=1.0, n=20_000)
    freq = torch.bincount(picks, minlength=4).float() / len(picks)
    expected = torch.softmax(logits[0] / 0.7, -1)
    assert torch.allclose(freq, expected, atol=0.015), (freq, expected)


def test_top_p_keeps_only_the_nucleus_and_renormalises() -> None:
    # probabilities 0.5, 0.3, 0.15, 0.05: top_p 0.7 keeps the first two (0.5 < 0.7 ≤ 0.8)
    probs = torch.tensor([[0.05, 0.5, 0.15, 0.3]])
    picks = _draw(probs.log(), temp=1.0, top_p=0.7, n=10_000, seed=7)
    assert set(picks.tolist()) == {1, 3}
    share = (picks == 1).float().mean()
    assert abs(float(share) - 0.5 / 0.8) < 0.02


def test_zero_probability_tokens_are_never_drawn() -> None:
    logits = torch.tensor([[float("-inf"), 0.0, float("-inf"), 0.0, float("-inf")]])
    picks = _draw(logits, temp=1.0, top_p=1.0, n=5_000, seed=3)
    assert set(picks.tolist()) == {1, 3}


def test_each_row_draws_from_its_own_generator() -> None:
    logits = torch.randn(1, 50).expand(3, -1)
    temps, top_ps = torch.ones(3), torch.ones(3)

    def gens(seeds: list[int]) -> list[torch.Generator]:
        return [torch.Generator().manual_seed(s) for s in seeds]

    first = _sample(logits, temps, top_ps, gens([1, 2, 3]))
    again = _sample(logits, temps, top_ps, gens([9, 2, 8]))
    assert first[1] == again[1]  # same seed, same draw, whatever its neighbours are
