"""Rollouts: step spans → tokens, skipped error scores, group buffer, process advantages."""

from __future__ import annotations

import math

import pytest
import torch

from tentalis.events import ResultEvent, ScoreEvent, TaskEvent
from tentalis.models.tiny import build_tiny_tokenizer
from tentalis.steps.parsing import parse_steps
from tentalis.training.rollouts import (
    Rollout,
    RolloutBuffer,
    _decoded_char_ends,
    _encoded_char_ends,
    group_by,
    rollout_advantages,
    rollout_from_score,
    step_char_spans,
    step_token_spans,
    token_char_ends,
)

TEXT = "<step>First, add the numbers.</step> <step>Then, check the result.</step>\nThe answer is 5."


@pytest.fixture(scope="module")
def tok():
    return build_tiny_tokenizer()


def make_score(tok, text: str = TEXT, *, group: str = "g1", **overrides) -> ScoreEvent:
    task = TaskEvent(prompt="What is 2 + 3?", group_id=group)
    ids = tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    parsed = parse_steps(text)
    result_fields = {
        "raw_text": text,
        "steps": parsed.steps,
        "final_answer": parsed.final_answer,
        "prompt_token_ids": tok("What is 2 + 3?")["input_ids"],
        "completion_token_ids": ids,
        "logprobs": [-0.5] * len(ids),
        "finish_reason": "stop",
    } | overrides.pop("result", {})
    result = ResultEvent(task_id=task.task_id, task=task, worker_id="w", **result_fields)
    fields = {"scorer": "test", "step_scores": [1.0, 0.0], "outcome_score": 1.0} | overrides
    return ScoreEvent(task_id=task.task_id, result=result, **fields)


def test_step_spans_map_to_the_step_tokens(tok) -> None:
    r = rollout_from_score(make_score(tok), tok)
    assert r is not None
    assert len(r.step_spans) == 2
    texts = [tok.decode(r.completion_ids[s:e]) for s, e in r.step_spans]
    # Each span covers its whole block, tags included; a token straddling the boundary
    # (" <" here) belongs to the step it overlaps.
    assert texts[0] == "<step>First, add the numbers.</step>"
    assert texts[1].strip() == "<step>Then, check the result.</step>"
    (s0, e0), (s1, e1) = r.step_spans
    assert 0 == s0 < e0 <= s1 < e1
    tail = tok.decode(r.completion_ids[e1:], skip_special_tokens=True)
    assert tail == "\nThe answer is 5."  # the answer is outside every step
    assert r.step_rewards == [1.0, 0.0] and r.reward == 1.0
    assert r.group_id == "g1" and not r.truncated
    assert r.behavior_logprobs == [-0.5] * len(r.completion_ids)


def test_step_spans_with_multibyte_characters(tok) -> None:
    text = "<step>Café costs 5 😀 euros.</step><step>Add 3 → 8.</step> Answer: 8"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    spans = step_token_spans(text, parse_steps(text).steps, ids, tok)
    assert [tok.decode(ids[s:e]) for s, e in spans] == [
        "<step>Café costs 5 😀 euros.</step>",
        "<step>Add 3 → 8.</step>",
    ]


def test_offset_mapping_and_prefix_decoding_agree(tok) -> None:
    ids = tok(TEXT, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    fast = _encoded_char_ends(ids, tok, TEXT)
    assert fast is not None and fast == _decoded_char_ends(ids, tok, TEXT)
    assert fast == token_char_ends(ids, tok, TEXT) and fast[-1] == len(TEXT)
    # Ids that are not the canonical encoding (here: one token split in two) fall back.
    split = (
        tok("Fir", add_special_tokens=False)["input_ids"]
        + tok("st step", add_special_tokens=False)["input_ids"]
    )
    assert _encoded_char_ends(split, tok, "First step") is None
    assert token_char_ends(split, tok, "First step")[-1] == len("First step")


def test_untagged_steps_are_found_by_their_words(tok) -> None:
    text = "Step 1: add 2 and 3\n  to get 5\nStep 2: check it\nAnswer: 5"
    steps = parse_steps(text).steps
    assert steps == ["add 2 and 3 to get 5", "check it"]
    chars = step_char_spans(text, steps)
    assert [text[s:e] for s, e in chars] == ["add 2 and 3\n  to get 5", "check it"]
    ids = tok(text, add_special_tokens=False)["input_ids"]
    spans = step_token_spans(text, steps, ids, tok)
    assert "check it" in tok.decode(ids[spans[1][0] : spans[1][1]])
    # a step that is not in the text gets an empty span, keeping later indices aligned
    assert step_token_spans(text, ["nowhere to be seen", "check it"], ids, tok)[0] == (0, 0)


def test_text_that_does_not_match_the_tokens_maps_nothing(tok) -> None:
    ids = tok("something else entirely", add_special_tokens=False)["input_ids"]
    steps = parse_steps(TEXT).steps
    assert step_token_spans(TEXT, steps, ids, tok) == [(0, 0), (0, 0)]


def test_error_scores_and_missing_tokens_are_skipped(tok) -> None:
    assert rollout_from_score(make_score(tok, error="judge timed out"), tok) is None
    assert rollout_from_score(make_score(tok, result={"error": "worker died"}), tok) is None
    missing = make_score(tok, result={"completion_token_ids": None})
    assert rollout_from_score(missing, tok) is None


def test_truncated_and_mismatched_logprobs(tok) -> None:
    score = make_score(tok, result={"finish_reason": "length", "logprobs": [-1.0]})
    r = rollout_from_score(score, tok)
    assert r is not None and r.truncated and r.behavior_logprobs is None


def rollout(rid: str, gid: str, reward: float = 0.0, **kw) -> Rollout:
    return Rollout(rid, gid, "t", [1, 2], kw.pop("completion", [3, 4, 5]), reward, **kw)


def test_buffer_releases_complete_groups_only() -> None:
    now = [0.0]
    buf = RolloutBuffer(3, clock=lambda: now[0])
    assert buf.add(rollout("a1", "a")) == []
    assert buf.add(rollout("b1", "b")) == []
    assert buf.add(rollout("a2", "a")) == []
    assert buf.add(rollout("a2", "a")) == []  # redelivered: ignored
    assert buf.duplicates == 1
    done = buf.add(rollout("a3", "a"))
    assert [g.group_id for g in done] == ["a"]
    assert [r.rollout_id for r in done[0].rollouts] == ["a1", "a2", "a3"]
    assert buf.pending_groups == {"b": 1}
    assert buf.add(rollout("a4", "a")) == [] and buf.late == 1  # group already trained on


def test_buffer_stale_releases_partial_groups_and_discards_singletons() -> None:
    now = [0.0]
    buf = RolloutBuffer(4, clock=lambda: now[0])
    buf.extend([rollout("a1", "a"), rollout("a2", "a"), rollout("b1", "b")])
    now[0] = 5.0
    buf.add(rollout("c1", "c"))
    assert buf.stale(10.0) == []
    now[0] = 12.0
    released = buf.stale(10.0)  # a and b are 12 s old, c only 7 s
    assert [g.group_id for g in released] == ["a"] and len(released[0]) == 2
    assert buf.discarded == 1
    assert buf.pending_groups == {"c": 1}


def test_group_by_keeps_first_seen_order() -> None:
    groups = group_by([rollout("1", "x"), rollout("2", "y"), rollout("3", "x")])
    assert [(g.group_id, len(g)) for g in groups] == [("x", 2), ("y", 1)]


def test_process_advantages_hand_computed() -> None:
    # Group of two: rewards 1, 0 → outcome advantages ±1 (population std 0.5).
    # Step scores pooled over the group: [1, 0] and [0.5] → mean 0.5, centred [0.5, -0.5, 0],
    # population std sqrt(1/6) → [1.2247, -1.2247, 0]; λ = 0.5 → ±0.6124 on the step tokens.
    a = rollout("a", "g", 1.0, completion=[3] * 5, step_spans=[(0, 2), (2, 4)],
                step_rewards=[1.0, 0.0])  # fmt: skip
    b = rollout("b", "g", 0.0, completion=[3] * 4, step_spans=[(1, 3)], step_rewards=[0.5])
    outcome, adv = rollout_advantages([a, b], advantage="group", step_reward_weight=0.5)
    s = 0.5 * 0.5 / math.sqrt(1 / 6)
    torch.testing.assert_close(outcome, torch.tensor([1.0, -1.0]), atol=1e-5, rtol=0)
    expected = torch.tensor([[1 + s, 1 + s, 1 - s, 1 - s, 1], [-1, -1, -1, -1, 0]])
    torch.testing.assert_close(adv, expected, atol=1e-5, rtol=0)
    # λ = 0: outcome only; rloo: leave-one-out baseline, steps centred only.
    _, plain = rollout_advantages([a, b], step_reward_weight=0.0)
    torch.testing.assert_close(plain, torch.tensor([[1.0] * 5, [-1.0] * 4 + [0.0]]))
    out_rloo, _ = rollout_advantages([a, b], advantage="rloo")
    torch.testing.assert_close(out_rloo, torch.tensor([1.0, -1.0]))


def test_rollout_validates_spans() -> None:
    with pytest.raises(ValueError, match="outside"):
        rollout("x", "g", completion=[1, 2], step_spans=[(0, 3)])
    with pytest.raises(ValueError, match="prompt_ids"):
        Rollout("x", "g", "t", [], [1], 0.0)
