"""KV-cache helpers: the shareable token prefix of a batch."""

from __future__ import annotations

from tentalis.models.kv import (
    MIN_SHARED_PREFIX,
    distinct_keys,
    left_padded,
    shareable_prefix,
    shared_prefix_len,
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
