"""BufferLayer keeps the keys/values transformers' DynamicLayer would, without a copy per token."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig
from transformers.cache_utils import DynamicLayer

from tentalis.inference.kvcache import BufferLayer, buffer_cache, worth_compacting


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
