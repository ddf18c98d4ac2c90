"""KV-cache helpers: the shareable token prefix of a batch."""

from __future__ import annotations

from tentalis.models.kv import shared_prefix_len


def test_shared_prefix_len_leaves_a_prompt_token_to_run() -> None:
    assert shared_prefix_len([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9]]) == 2
    assert shared_prefix_len([[1, 2, 3], [1, 2, 3]]) == 2  # identical: the last one runs
    assert shared_prefix_len([[1, 2, 3, 4], [1, 2]]) == 1  # the shorter row keeps a token
    assert shared_prefix_len([[7], [7]]) == 0
    assert shared_prefix_len([[1, 2], [3, 2]]) == 0
    assert shared_prefix_len([]) == 0
