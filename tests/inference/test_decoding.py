"""The batched decode loop: its per-row sampler, and the shared prompt prefix."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tentalis.inference import ChatRequest, Completion, decoding
from tentalis.inference.decoding import RowSpec, _sample
from tentalis.inference.local import LocalInference
from tentalis.models import kv


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


SYSTEM = ("Solve the problem step by step. Write each step inside step tags and finish "
          "with a line that says Answer followed by the number.")
QUESTIONS = ["What is 2 + 3?", "Name a colour.", "Count to four, slowly and out loud.", "Hi"]


def _assert_same_answers(got: list[Completion], want: list[Completion]) -> None:
    for g, w in zip(got, want, strict=True):
        assert g.completion_token_ids == w.completion_token_ids
        assert g.prompt_token_ids == w.prompt_token_ids
        assert g.finish_reason == w.finish_reason
        torch.testing.assert_close(torch.tensor(g.logprobs), torch.tensor(w.logprobs),
                                   atol=1e-4, rtol=1e-4)


def _requests(adapter: str | None) -> list[ChatRequest]:
    return [ChatRequest([{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}],
                        max_tokens=8, temperature=t, seed=i, adapter=adapter)
            for i, q in enumerate(QUESTIONS) for t in (0.0, 0.9)]


@pytest.mark.parametrize("adapter", [None, "A"])
async def test_a_shared_prompt_prefix_is_prefilled_once_with_the_same_answers(
    tiny_model_dir: Path, lora_dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
    adapter: str | None,
) -> None:
    shares: list[int] = []
    real = decoding.shared_prefix

    def recording(rows: list[RowSpec]) -> int:
        shares.append(real(rows))
        return shares[-1]

    monkeypatch.setattr(decoding, "shared_prefix", recording)
    llm = LocalInference(tiny_model_dir, device="cpu", dtype="float32", max_batch=16,
                         merge_adapters=False)  # routed: the prefix runs with the adapter
    try:
        if adapter:
            await llm.load_adapter(adapter, str(lora_dirs["a1"]))
        shared = await llm.chat(_requests(adapter))
        assert shares and shares[-1] >= kv.MIN_SHARED_PREFIX  # it did share
        monkeypatch.setattr(kv, "MIN_SHARED_PREFIX", 10**9)
        full = await llm.chat(_requests(adapter))
        assert shares[-1] == 0
    finally:
        await llm.close()
    _assert_same_answers(shared, full)


def test_rows_on_different_adapters_or_a_short_prefix_do_not_share() -> None:
    long = list(range(40))
    rows = [RowSpec([*long, i], 4, adapter="a") for i in range(3)]
    assert decoding.shared_prefix(rows) == 40
    assert decoding.shared_prefix([*rows[:2], RowSpec([*long, 9], 4, adapter="b")]) == 0
    assert decoding.shared_prefix(rows[:1]) == 0  # one row: nothing to share
    short = [RowSpec([1, 2, 3, i], 4) for i in range(3)]
    assert decoding.shared_prefix(short) == 0  # under MIN_SHARED_PREFIX


def _group_requests() -> list[ChatRequest]:
    """Two prompts × four samples (a GRPO round), caps of 3 to 12 tokens so rows finish
    at different steps, plus one greedy row."""
    return [
        *(ChatRequest([{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}],
                      max_tokens=3 + 3 * j, temperature=0.9, seed=10 * i + j)
          for i, q in enumerate(QUESTIONS[:2]) for j in range(4)),
        ChatRequest([{"role": "user", "content": QUESTIONS[2]}], max_tokens=12, temperature=0.0),
    ]


async def test_a_group_prefills_its_prompt_once_and_drops_finished_rows_in_bunches(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One prefill per distinct prompt and lazy row dropping give the answers of a prefill
    per row with every finished row dropped at once."""
    uniques: list[int] = []
    real = decoding.distinct_prompts

    def recording(rows: list[RowSpec]) -> tuple[list[int], list[int]]:
        uniq, expand = real(rows)
        uniques.append(len(uniq))
        return uniq, expand

    monkeypatch.setattr(decoding, "distinct_prompts", recording)
    llm = LocalInference(tiny_model_dir, device="cpu", dtype="float32", max_batch=16)
    try:
        grouped = await llm.chat(_group_requests())
        assert uniques == [3]
        monkeypatch.setattr(decoding, "distinct_prompts",
                            lambda rows: (list(range(len(rows))), list(range(len(rows)))))
        monkeypatch.setattr(decoding, "worth_compacting", lambda finished, batch: finished > 0)
        per_row = await llm.chat(_group_requests())
    finally:
        await llm.close()
    lengths = {len(c.completion_token_ids) for c in grouped}
    assert len(lengths) > 2  # rows did finish at different steps
    _assert_same_answers(grouped, per_row)


def test_distinct_prompts_are_keyed_by_tokens_and_adapter() -> None:
    rows = [RowSpec([1, 2], 4), RowSpec([1, 2], 4, seed=3), RowSpec([1, 3], 4),
            RowSpec([1, 2], 4, adapter="a"), RowSpec([1, 3], 4)]
    assert decoding.distinct_prompts(rows) == ([0, 2, 3], [0, 0, 1, 2, 1])
