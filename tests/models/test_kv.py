"""Key/value caches: the shareable token prefix of a batch, the prefix prefill, and the
BufferLayer that keeps the keys/values transformers' DynamicLayer would, without a copy per
token."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig
from transformers.cache_utils import DynamicLayer

from tentalis.models.kv import (
    MIN_SHARED_PREFIX,
    BufferLayer,
    buffer_cache,
    distinct_keys,
    dynamic_cache,
    left_padded,
    prefill_prefix,
    shareable_prefix,
    shared_prefix_len,
    worth_compacting,
)


def test_shared_prefix_len_leaves_a_prompt_token_to_run() -> None:
    assert shared_prefix_len([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9]]) == 2
    assert shared_prefix_len([[1, 2, 3], [1, 2, 3]]) == 2  # identical: the last one runs
    assert shared_prefix_len([[1, 2, 3, 4], [1, 2]]) == 1  # the shorter row keeps a token
    assert shared_prefix_len([[7], [7]]) == 0
    assert shared_prefix_len([[1, 2], [3, 2]]) == 0
    assert shared_prefix_len([]) == 0


def test_shareable_prefix_needs_two_rows_and_a_long_enough_prefix() -> None:
    long = list(range(MIN_SHARED_PREFIX))
    assert shareable_prefix([[*long, 1], [*long, 2]]) == MIN_SHARED_PREFIX
    assert shareable_prefix([[*long, 1]]) == 0  # one row: nothing to share
    assert shareable_prefix([long, [*long[:-1], 99]]) == 0  # one token short


def test_distinct_keys_index_each_row_to_its_first_occurrence() -> None:
    assert distinct_keys([]) == ([], [])
    assert distinct_keys(["a", "b", "a", "c", "b"]) == ([0, 1, 3], [0, 1, 0, 2, 1])


def test_left_padded_rows_end_together_with_positions_after_the_offset() -> None:
    ids, attn, pos = left_padded([[7, 8, 9], [5]], pad_id=0, offset=10, device="cpu")
    assert ids.tolist() == [[7, 8, 9], [0, 0, 5]]
    assert attn.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert pos.tolist() == [[10, 11, 12], [10, 10, 10]]


def _kv(b: int, t: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 2, t, 4, generator=g), torch.randn(b, 2, t, 4, generator=g)


@pytest.mark.parametrize("capacity", [3, 40])  # 3: the buffers must grow
def test_updates_repeats_and_row_selection_match_the_dynamic_layer(capacity: int) -> None:
    ours, theirs = BufferLayer(capacity), DynamicLayer()
    seed = 0

    def step(b: int, t: int) -> None:
        nonlocal seed
        seed += 1
        k, v = _kv(b, t, seed)
        got, want = ours.update(k, v), theirs.update(k, v)
        for g, w in zip(got, want, strict=True):
            torch.testing.assert_close(g, w, rtol=0, atol=0)

    step(1, 5)  # a shared prefix
    for layer in (ours, theirs):
        layer.batch_repeat_interleave(3)
    step(3, 2)
    rows = torch.tensor([0, 0, 2, 1])  # a row may be repeated (one prefill per group)
    for layer in (ours, theirs):
        layer.batch_select_indices(rows)
    for _ in range(4):
        step(4, 1)
    for layer in (ours, theirs):
        layer.batch_select_indices(torch.tensor([3, 1]))
    step(2, 1)
    assert ours.get_seq_length() == theirs.get_seq_length() == 12
    torch.testing.assert_close(ours.keys, theirs.keys, rtol=0, atol=0)
    torch.testing.assert_close(ours.values, theirs.values, rtol=0, atol=0)


def test_buffer_cache_has_one_buffer_layer_per_model_layer() -> None:
    config = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=3,
                         num_attention_heads=2, num_key_value_heads=1)
    cache = buffer_cache(config, 16)
    assert len(cache.layers) == config.num_hidden_layers
    assert all(isinstance(layer, BufferLayer) and layer.capacity == 16 for layer in cache.layers)


def test_finished_rows_are_dropped_once_they_are_an_eighth_of_the_batch() -> None:
    assert not worth_compacting(0, 1)
    assert worth_compacting(1, 1)
    assert not worth_compacting(7, 64)
    assert worth_compacting(8, 64)


def test_prefill_prefix_repeats_the_prefix_keys_values_for_every_row() -> None:
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1,
    ))
    prefix = torch.tensor([[3, 4, 5, 6]])
    cache = dynamic_cache(model.config)
    with torch.no_grad():
        prefill_prefix(model, cache, prefix, 3, logits_to_keep=1)
        alone = model(input_ids=prefix, use_cache=True).past_key_values
    assert cache.get_seq_length() == 4
    for ours, theirs in zip(cache.layers, alone.layers, strict=True):
        assert ours.keys.shape[0] == 3
        torch.testing.assert_close(ours.keys, theirs.keys.expand(3, -1, -1, -1))
