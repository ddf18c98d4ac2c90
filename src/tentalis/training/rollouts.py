"""Rollouts: scored results as token sequences the trainer can learn from.

A :class:`Rollout` is one completion with its prompt and completion token ids, its outcome
reward, and one token span and reward per ``<step>``. :func:`rollout_from_score` builds it
from a :class:`~tentalis.events.ScoreEvent`; :class:`RolloutBuffer` collects rollouts as
scores arrive and releases complete groups (the G samples of one prompt).

Process rewards → per-token advantages (:func:`rollout_advantages`)::

    A_out[i]     = outcome advantage of completion i among its group: r_i − mean_g(r),
                   scaled by the group std (group), batch std (batch) or 1 (none); or RLOO
    A_step[i, k] = s_ik − mean_g(s), every step of every completion of group g pooled,
                   scaled the same way (rloo: centred only)
    A[i, t]      = A_out[i] + λ · A_step[i, k(t)]   for token t inside step k's span
                 = A_out[i]                         for tokens outside every step

The step baseline is the group's mean step score: steps of different completions do not
line up one-to-one (different counts, different content), so "the average step this prompt
elicits" is the only baseline every step shares. A step better than that average is pushed
up even inside a wrong answer, a bad step inside a right answer is pushed down, and a group
whose step scores are all equal adds nothing. λ is ``TrainConfig.step_reward_weight``.
"""

from __future__ import annotations

import bisect
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch

from tentalis.events import ScoreEvent
from tentalis.steps.parsing import find_step_blocks
from tentalis.training.losses import (
    group_advantages,
    rloo_advantages,
    step_index_from_spans,
    token_advantages,
)

Span = tuple[int, int]


@dataclass(frozen=True)
class Rollout:
    """One completion to train on.

    ``step_spans[k]`` is the half-open token range ``[start, end)`` of step k in
    ``completion_ids`` (empty ``(0, 0)`` when the step could not be located);
    ``step_rewards[k]`` its score. Only the first ``min(len(step_spans), len(step_rewards))``
    steps get a process advantage. ``truncated``: generation hit the length cap.
    ``behavior_logprobs``: the worker's log-prob of each completion token, when it sent them.
    """

    rollout_id: str
    group_id: str
    task_id: str
    prompt_ids: list[int]
    completion_ids: list[int]
    reward: float
    step_spans: list[Span] = field(default_factory=list)
    step_rewards: list[float] = field(default_factory=list)
    truncated: bool = False
    behavior_logprobs: list[float] | None = None

    def __post_init__(self) -> None:
        if not self.prompt_ids:
            raise ValueError(f"rollout {self.rollout_id}: prompt_ids is empty")
        n = len(self.completion_ids)
        for start, end in self.step_spans:
            if not 0 <= start <= end <= n:
                raise ValueError(
                    f"rollout {self.rollout_id}: step span ({start}, {end}) outside the "
                    f"{n}-token completion"
                )
        if self.behavior_logprobs is not None and len(self.behavior_logprobs) != n:
            raise ValueError(
                f"rollout {self.rollout_id}: {len(self.behavior_logprobs)} behavior logprobs "
                f"for {n} completion tokens"
            )

    @property
    def scored_steps(self) -> int:
        """Steps that have both a span and a reward."""
        return min(len(self.step_spans), len(self.step_rewards))

    @property
    def num_tokens(self) -> int:
        return len(self.prompt_ids) + len(self.completion_ids)


@dataclass(frozen=True)
class RolloutGroup:
    """The rollouts of one prompt (one ``group_id``)."""

    group_id: str
    rollouts: tuple[Rollout, ...]

    def __len__(self) -> int:
        return len(self.rollouts)

    @property
    def rewards(self) -> list[float]:
        return [r.reward for r in self.rollouts]

    def has_signal(self, step_reward_weight: float = 0.0) -> bool:
        """False when every advantage would be 0: equal outcome rewards and (when λ > 0)
        equal step rewards across the group."""
        if len(set(self.rewards)) > 1:
            return True
        if step_reward_weight <= 0:
            return False
        steps = {s for r in self.rollouts for s in r.step_rewards[: r.scored_steps]}
        return len(steps) > 1


def group_by(rollouts: Iterable[Rollout]) -> list[RolloutGroup]:
    """Group rollouts by ``group_id``, groups and members in first-seen order."""
    groups: dict[str, list[Rollout]] = {}
    for r in rollouts:
        groups.setdefault(r.group_id, []).append(r)
    return [RolloutGroup(gid, tuple(rs)) for gid, rs in groups.items()]


# --------------------------------------------------------------------------- from scores


def rollout_from_score(score: ScoreEvent, tokenizer: object | None) -> Rollout | None:
    """The rollout of a scored result, or None when there is nothing to train on.

    None when the score or the result carries an error, or the result has no prompt or
    completion token ids (e.g. an OpenAI-compatible backend that returned text only). The
    group is the task's ``group_id`` (else its ``task_id``). With ``tokenizer=None`` no step
    spans are computed (the rollout trains on its outcome only).
    """
    result = score.result
    if score.error or result.error or not result.prompt_token_ids:
        return None
    completion = list(result.completion_token_ids or [])
    if not completion:
        return None
    spans = (
        step_token_spans(result.raw_text, result.steps, completion, tokenizer)
        if tokenizer is not None and result.steps
        else []
    )
    logprobs = result.logprobs
    if logprobs is not None and len(logprobs) != len(completion):
        logprobs = None  # not one per token: unusable as behaviour log-probs
    return Rollout(
        rollout_id=result.event_id,
        group_id=result.task.group_id or result.task_id,
        task_id=result.task_id,
        prompt_ids=list(result.prompt_token_ids),
        completion_ids=completion,
        reward=float(score.outcome_score),
        step_spans=spans,
        step_rewards=[float(s) for s in score.step_scores],
        truncated=result.finish_reason == "length",
        behavior_logprobs=list(logprobs) if logprobs is not None else None,
    )


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def step_char_spans(text: str, steps: Sequence[str]) -> list[Span | None]:
    """Character span of each step in ``text``, in order; None for a step not found.

    When ``text`` holds exactly the ``<step>`` blocks the parser turned into ``steps`` (the
    normal case), each span is its whole block, tags included: the model wrote the tags too.
    Otherwise (fallback ``Step 1:`` formats, edited steps) each step's words are searched in
    order, any whitespace between them, from where the previous step ended.
    """
    blocks = [b for b in find_step_blocks(text) if _normalise(b.text)]
    if len(blocks) == len(steps) and all(
        _normalise(b.text) == _normalise(s) for b, s in zip(blocks, steps, strict=True)
    ):
        return [(b.start, b.end) for b in blocks]
    out: list[Span | None] = []
    cursor = 0
    for step in steps:
        words = step.split()
        m = re.search(r"\s+".join(map(re.escape, words)), text[cursor:]) if words else None
        if m is None:
            out.append(None)
            continue
        out.append((cursor + m.start(), cursor + m.end()))
        cursor += m.end()
    return out


def token_char_ends(ids: Sequence[int], tokenizer: object, text: str) -> list[int] | None:
    """End offset in ``text`` of each token of ``ids``, or None when they do not decode to it.

    Fast path: when re-encoding ``text`` gives exactly the leading ids (the usual case for
    sampled text), the fast tokenizer's offset mapping is used, O(n); the tokens after it (the
    EOS) end at ``len(text)``. Otherwise: decode the first k tokens for every k
    (``skip_special_tokens=False``, no clean-up, the way the local worker decodes) and take
    the length of each prefix. That works for any tokenizer and for generated ids that are
    not the canonical encoding of the text, at O(n²) decode work (~0.1 s for 400 tokens).
    Limits: a token ending inside a multi-byte character (decoding to "\\ufffd") gets a
    zero-width range and the character goes to the token that completes it (the offset
    mapping gives such tokens the whole character instead); special tokens past the end of
    ``text`` clamp to ``len(text)``. When the decoded completion does not start with
    ``text`` (after also trying ``skip_special_tokens=True`` and a whitespace-stripped
    prefix) nothing is mapped and None is returned.
    """
    fast = _encoded_char_ends(ids, tokenizer, text)
    return fast if fast is not None else _decoded_char_ends(ids, tokenizer, text)


def _decoded_char_ends(ids: Sequence[int], tokenizer: object, text: str) -> list[int] | None:
    """Token end offsets by decoding every prefix (any tokenizer, any ids)."""
    decode: Callable[..., str] = tokenizer.decode  # type: ignore[attr-defined]
    for skip in (False, True):
        full = decode(list(ids), skip_special_tokens=skip, clean_up_tokenization_spaces=False)
        offset = 0 if full.startswith(text) else full.find(text) if text else 0
        if offset >= 0 and full[:offset].strip() == "":
            break
    else:
        return None
    ends: list[int] = []
    prev = 0
    for k in range(1, len(ids) + 1):
        prefix = decode(list(ids[:k]), skip_special_tokens=skip, clean_up_tokenization_spaces=False)
        end = prev if prefix.endswith("\ufffd") else len(prefix) - offset
        prev = min(max(prev, end), len(text))
        ends.append(prev)
    return ends


def _encoded_char_ends(ids: Sequence[int], tokenizer: object, text: str) -> list[int] | None:
    """Token end offsets from the fast tokenizer's offset mapping, when ``text`` re-encodes
    to the leading ids; else None."""
    try:
        enc = tokenizer(  # type: ignore[operator]
            text, add_special_tokens=False, return_offsets_mapping=True
        )
    except Exception:  # slow tokenizers have no offset mapping
        return None
    encoded, offsets = list(enc["input_ids"]), enc.get("offset_mapping")
    if not offsets or not encoded or list(ids[: len(encoded)]) != encoded:
        return None
    ends, prev = [], 0
    for _, end in offsets:
        prev = max(prev, min(int(end), len(text)))
        ends.append(prev)
    return ends + [len(text)] * (len(ids) - len(encoded))


def step_token_spans(
    text: str, steps: Sequence[str], completion_ids: Sequence[int], tokenizer: object
) -> list[Span]:
    """Token span ``[start, end)`` of each step in ``completion_ids`` (see
    :func:`step_char_spans` and :func:`token_char_ends`); ``(0, 0)`` for a step that could
    not be located. A token is in a step when its characters overlap the step's; a token
    straddling two steps belongs to both (the later one wins in the advantage)."""
    char_spans = step_char_spans(text, steps)
    if not any(char_spans):
        return [(0, 0)] * len(steps)
    ends = token_char_ends(completion_ids, tokenizer, text)
    if ends is None:
        return [(0, 0)] * len(steps)
    starts = [0, *ends[:-1]]
    spans: list[Span] = []
    for cs in char_spans:
        if cs is None:
            spans.append((0, 0))
            continue
        first = bisect.bisect_right(ends, cs[0])  # first token ending after the step starts
        last = bisect.bisect_left(starts, cs[1])  # tokens starting before the step ends
        spans.append((first, max(first, last)) if first < last else (0, 0))
    return spans


# --------------------------------------------------------------------------- advantages


def rollout_advantages(
    rollouts: Sequence[Rollout],
    *,
    advantage: str = "group",
    step_reward_weight: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Outcome advantages (B,) and per-token advantages (B, T), as in the module docstring.

    Rows are grouped by ``group_id``; T is the longest completion; tokens past a row's end
    get 0.
    """
    b = len(rollouts)
    t = max((len(r.completion_ids) for r in rollouts), default=0)
    lengths = torch.tensor([len(r.completion_ids) for r in rollouts])  # (B,)
    mask = (torch.arange(t)[None, :] < lengths[:, None]).float()  # (B, T)
    rewards = torch.tensor([r.reward for r in rollouts], dtype=torch.float32)  # (B,)
    gids = [r.group_id for r in rollouts]
    if advantage == "rloo":
        outcome = rloo_advantages(rewards, gids)
    else:
        outcome = group_advantages(rewards, gids, advantage)  # type: ignore[arg-type]

    s = max((r.scored_steps for r in rollouts), default=0)
    if step_reward_weight == 0 or s == 0:
        return outcome, token_advantages(outcome, mask)
    flat = [
        (i, k, r.step_rewards[k]) for i, r in enumerate(rollouts) for k in range(r.scored_steps)
    ]
    step_scores = torch.tensor([v for _, _, v in flat], dtype=torch.float32)
    scale = "none" if advantage == "rloo" else advantage
    step_flat = group_advantages(step_scores, [gids[i] for i, _, _ in flat], scale)  # type: ignore[arg-type]
    step_adv = torch.zeros(b, s)  # (B, S)
    rows = torch.tensor([i for i, _, _ in flat])
    cols = torch.tensor([k for _, k, _ in flat])
    step_adv[rows, cols] = step_flat
    index = step_index_from_spans([r.step_spans[: r.scored_steps] for r in rollouts], t)  # (B, T)
    return outcome, token_advantages(outcome, mask, index, step_adv, step_reward_weight)


# --------------------------------------------------------------------------- buffer


class RolloutBuffer:
    """Collects rollouts by ``group_id`` and releases each group once it is complete.

    :meth:`add` returns the groups that became complete (``group_size`` distinct rollouts).
    A rollout seen before (same ``rollout_id``, e.g. a redelivered score or a second scorer)
    is ignored and counted in ``duplicates``; one arriving for a group already released is
    dropped and counted in ``late`` (released group ids are remembered, up to ``remember``).

    Partial groups — a worker died, a task timed out — never complete by themselves; call
    :meth:`stale` periodically: every partial group whose *first* rollout arrived more than
    ``older_than_s`` seconds ago is removed; those with at least ``min_size`` rollouts are
    returned (group advantages work with any group size ≥ 2), smaller ones are discarded
    and counted in ``discarded``.
    """

    def __init__(
        self,
        group_size: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        remember: int = 100_000,
    ) -> None:
        if group_size < 1:
            raise ValueError(f"group_size must be ≥ 1, got {group_size}")
        self.group_size = group_size
        self._clock = clock
        self._remember = remember
        self._pending: dict[str, tuple[float, dict[str, Rollout]]] = {}
        self._released: OrderedDict[str, None] = OrderedDict()
        self.duplicates = 0
        self.late = 0
        self.discarded = 0

    def __len__(self) -> int:
        """Rollouts waiting in partial groups."""
        return sum(len(members) for _, members in self._pending.values())

    @property
    def pending_groups(self) -> dict[str, int]:
        """Partial groups: group id → rollouts held."""
        return {gid: len(members) for gid, (_, members) in self._pending.items()}

    def add(self, rollout: Rollout) -> list[RolloutGroup]:
        """Add one rollout; returns the group it completed, if it did."""
        gid = rollout.group_id
        if gid in self._released:
            self.late += 1
            return []
        _, members = self._pending.setdefault(gid, (self._clock(), {}))
        if rollout.rollout_id in members:
            self.duplicates += 1
            return []
        members[rollout.rollout_id] = rollout
        if len(members) < self.group_size:
            return []
        return [self._release(gid)]

    def extend(self, rollouts: Iterable[Rollout]) -> list[RolloutGroup]:
        return [g for r in rollouts for g in self.add(r)]

    def stale(self, older_than_s: float, *, min_size: int = 2) -> list[RolloutGroup]:
        """Remove partial groups older than ``older_than_s``; return those worth training."""
        now = self._clock()
        out: list[RolloutGroup] = []
        for gid in [g for g, (t0, _) in self._pending.items() if now - t0 > older_than_s]:
            size = len(self._pending[gid][1])
            group = self._release(gid)
            if size >= min_size:
                out.append(group)
            else:
                self.discarded += size
        return out

    def _release(self, gid: str) -> RolloutGroup:
        _, members = self._pending.pop(gid)
        self._released[gid] = None
        while len(self._released) > self._remember:
            self._released.popitem(last=False)
        return RolloutGroup(gid, tuple(members.values()))
