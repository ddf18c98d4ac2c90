"""GRPO/DAPO-family policy-gradient math as small pure functions (tensors in, tensors out).

Shapes: ``B`` completions, ``T`` completion tokens (right-padded), ``V`` vocabulary size,
``S`` reasoning steps. ``mask`` (B, T) is 1 for the tokens the loss trains on, 0 for padding
(and for tool output or anything else the caller wants to exclude).

The pieces, in the order a trainer uses them:

1. rewards → advantages: :func:`group_advantages` (GRPO / Dr. GRPO / batch-scaled) or
   :func:`rloo_advantages`; :func:`token_advantages` spreads them over tokens and mixes in
   per-step (process) advantages.
2. model logits → per-token log-probs: :func:`selective_log_softmax`, :func:`entropy_from_logits`.
3. :func:`policy_loss`: clipped surrogate (token or sequence ratio) or CISPO, optional k3 KL,
   and one of the GRPO / BNPO / Dr. GRPO / DAPO aggregations; :func:`micro_batch_weight`
   makes micro-batch accumulation exact.
4. DAPO overlong handling: :func:`overlong_mask`, :func:`soft_overlong_penalty`.

Differences from the papers, on purpose:
- Group std is the population std (see :func:`group_advantages`); TRL uses the unbiased one.
- Zero-variance groups get exactly 0 advantage (no ``eps``-sized noise).
- Padded positions are neutralised *before* any ``exp`` so garbage log-probs in padding can
  never turn into NaN/inf in the loss or its gradient.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Literal

import torch

from tentalis.config.training import LossType

AdvantageScale = Literal["group", "batch", "none"]
Groups = torch.Tensor | Sequence[Hashable] | int

LOSS_TYPES: tuple[str, ...] = ("grpo", "bnpo", "dr_grpo", "dapo", "gspo", "cispo")
ADVANTAGE_SCALES: tuple[str, ...] = ("group", "batch", "none")


# --------------------------------------------------------------------------- advantages


def group_index(
    groups: Groups, batch_size: int, device: torch.device | str | None = None
) -> tuple[torch.Tensor, int]:
    """Dense group index per row: ``(index (B,) long in [0, G), G)``.

    ``groups`` is either an int group size (rows ``[0, n)``, ``[n, 2n)``, … form groups; the
    batch must divide evenly), a (B,) tensor of group ids, or a length-B sequence of hashable
    ids (e.g. task ids). Ids need not be contiguous; groups are numbered in first-seen order
    for sequences and in sorted order for tensors.
    """
    if isinstance(groups, int):
        if groups < 1 or batch_size % groups:
            raise ValueError(
                f"group size {groups} does not divide batch size {batch_size}; pass per-row "
                "group ids instead when groups have different sizes"
            )
        return torch.arange(batch_size, device=device) // groups, batch_size // groups
    if isinstance(groups, torch.Tensor):
        if groups.shape != (batch_size,):
            raise ValueError(
                f"group ids must have shape ({batch_size},), got {tuple(groups.shape)}"
            )
        uniq, inverse = torch.unique(groups, return_inverse=True)
        return inverse.to(device), uniq.numel()
    if len(groups) != batch_size:
        raise ValueError(f"expected {batch_size} group ids, got {len(groups)}")
    first_seen: dict[Hashable, int] = {}
    index = [first_seen.setdefault(g, len(first_seen)) for g in groups]
    return torch.tensor(index, dtype=torch.long, device=device), len(first_seen)


def _group_sum(x: torch.Tensor, index: torch.Tensor, num_groups: int) -> torch.Tensor:
    return torch.zeros(num_groups, dtype=x.dtype, device=x.device).index_add(0, index, x)


def _zero_variance_rows(rewards: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """(B,) bool: the row's group has max == min (exact, so no float-noise 'variance')."""
    hi = torch.full((n,), -torch.inf, dtype=rewards.dtype, device=rewards.device)
    lo = torch.full((n,), torch.inf, dtype=rewards.dtype, device=rewards.device)
    hi = hi.scatter_reduce(0, index, rewards, reduce="amax")
    lo = lo.scatter_reduce(0, index, rewards, reduce="amin")
    return (hi == lo)[index]


def group_advantages(
    rewards: torch.Tensor,
    groups: Groups,
    scale: AdvantageScale = "group",
    eps: float = 1e-6,
    *,
    unbiased: bool = False,
) -> torch.Tensor:
    """Group-relative advantages, (B,) → (B,).

    ``A_i = (r_i − mean_g(r)) / (σ + eps)`` where ``g`` is row i's group and σ is

    - ``"group"`` (GRPO): the std of the rewards in group g;
    - ``"batch"``: the std of all B rewards (group mean, batch std, as TRL's
      ``scale_rewards="batch"``);
    - ``"none"`` (Dr. GRPO): no division, ``A_i = r_i − mean_g(r)``.

    σ is the *population* std (divide by n) unless ``unbiased=True`` (divide by n − 1, what
    TRL uses). Population is the default because it is the std of the group actually observed:
    it makes each group's advantages exactly unit-variance and is defined for a group of one,
    whereas the unbiased estimate inflates advantages by sqrt(n/(n−1)) (15% at n = 4) and
    is undefined at n = 1 (σ is then taken as 0).

    A group whose rewards are all equal carries no learning signal and gets exactly 0 in every
    mode (checked with max == min, never NaN).
    """
    if scale not in ADVANTAGE_SCALES:
        raise ValueError(f"scale must be one of {ADVANTAGE_SCALES}, got {scale!r}")
    rewards = rewards.detach().to(torch.promote_types(rewards.dtype, torch.float32))  # (B,)
    index, n = group_index(groups, rewards.shape[0], rewards.device)
    correction = 1 if unbiased else 0

    count = _group_sum(torch.ones_like(rewards), index, n)  # (G,)
    centred = rewards - (_group_sum(rewards, index, n) / count)[index]  # (B,)
    if scale == "group":
        sq = _group_sum(centred**2, index, n)  # (G,)
        var = sq / (count - correction).clamp(min=1)
        std = torch.where(count > correction, var.sqrt(), torch.zeros_like(var))[index]  # (B,)
    elif scale == "batch":
        b = rewards.numel()
        var = ((rewards - rewards.mean()) ** 2).sum() / max(b - correction, 1)
        std = var.sqrt() if b > correction else torch.zeros_like(var)  # ()
    else:
        std = None
    adv = centred if std is None else centred / (std + eps)
    return torch.where(_zero_variance_rows(rewards, index, n), torch.zeros_like(adv), adv)


def rloo_advantages(rewards: torch.Tensor, groups: Groups) -> torch.Tensor:
    """Leave-one-out advantages, (B,) → (B,): ``A_i = r_i − mean_{j≠i, j∈g} r_j``.

    Equivalently ``A_i = n/(n−1) · (r_i − mean_g r)``. A group of one has no baseline and gets
    0 (as does any group whose rewards are all equal).
    """
    rewards = rewards.detach().to(torch.promote_types(rewards.dtype, torch.float32))  # (B,)
    index, n = group_index(groups, rewards.shape[0], rewards.device)
    count = _group_sum(torch.ones_like(rewards), index, n)[index]  # (B,)
    total = _group_sum(rewards, index, n)[index]  # (B,)
    others = (total - rewards) / (count - 1).clamp(min=1)  # (B,)
    return torch.where(count > 1, rewards - others, torch.zeros_like(rewards))


def step_index_from_spans(
    spans: Sequence[Sequence[tuple[int, int]]], num_tokens: int
) -> torch.Tensor:
    """Per-token step index (B, T) from per-row step spans ``[(start, end), …]``.

    Spans are half-open token offsets into the completion; token t of row b gets the index of
    the span containing it, or −1 when no span does. Spans should not overlap (if they do,
    the later step wins); ends past ``num_tokens`` are cut.
    """
    out = torch.full((len(spans), num_tokens), -1, dtype=torch.long)  # (B, T)
    for b, row in enumerate(spans):
        for s, (start, end) in enumerate(row):
            if start < 0 or end < start:
                raise ValueError(f"row {b} step {s}: bad span ({start}, {end})")
            out[b, start : min(end, num_tokens)] = s
    return out


def token_advantages(
    outcome_adv: torch.Tensor,
    completion_mask: torch.Tensor,
    step_index: torch.Tensor | None = None,
    step_adv: torch.Tensor | None = None,
    step_weight: float = 1.0,
) -> torch.Tensor:
    """Per-token advantages (B, T) from outcome (B,) and optional per-step advantages.

    ``A[b, t] = mask[b, t] · (outcome_adv[b] + λ · step_adv[b, step_index[b, t]])`` with
    λ = ``step_weight``; a token outside every step (``step_index == −1``) gets
    ``outcome_adv[b]`` alone. ``step_adv`` is (B, S), padded with anything where a row has
    fewer than S steps (padded entries are never indexed). With no steps given this is just
    the outcome advantage broadcast over the completion.

    Outcome and process signals are added rather than multiplied so that a correct answer
    still rewards every step a little while a bad step inside it is pushed down (λ sets how
    much), and a step-scored run with no final verifier (outcome 0) still learns.
    """
    mask = completion_mask.to(outcome_adv.dtype)  # (B, T)
    adv = outcome_adv[:, None] * mask  # (B, T)
    if step_index is None and step_adv is None:
        return adv
    if step_index is None or step_adv is None:
        raise ValueError("step_index and step_adv go together: pass both or neither")
    if step_index.shape != completion_mask.shape:
        raise ValueError(
            f"step_index shape {tuple(step_index.shape)} != mask shape {tuple(mask.shape)}"
        )
    num_steps = step_adv.shape[1]
    if step_index.numel() and int(step_index.max()) >= num_steps:
        raise ValueError(
            f"step_index refers to step {int(step_index.max())} but step_adv has only "
            f"{num_steps} columns"
        )
    if num_steps == 0:
        return adv
    in_step = step_index >= 0  # (B, T)
    gathered = step_adv.to(adv.dtype).gather(1, step_index.clamp(min=0))  # (B, T)
    return adv + step_weight * torch.where(in_step, gathered, torch.zeros_like(gathered)) * mask


# --------------------------------------------------------------------------- log-probs


def selective_log_softmax(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Log-prob of the chosen ids, (B, T, V), (B, T) → (B, T).

    ``log p(id) = logits[id] − logsumexp(logits)``, computed one row of the batch at a time so
    that the extra memory is O(T·V) for one row, never a second (B, T, V) tensor. The result
    is at least float32 (bf16/fp16 logits are upcast per row; logsumexp in half precision loses
    the small differences that ratios depend on).
    """
    out_dtype = torch.promote_types(logits.dtype, torch.float32)
    rows = []
    for row_logits, row_ids in zip(logits, ids, strict=True):  # (T, V), (T,)
        row_logits = row_logits.to(out_dtype)
        chosen = row_logits.gather(-1, row_ids[:, None]).squeeze(-1)  # (T,)
        rows.append(chosen - torch.logsumexp(row_logits, dim=-1))
    if not rows:
        return logits.new_zeros(ids.shape, dtype=out_dtype)
    return torch.stack(rows)  # (B, T)


def token_entropy(logits: torch.Tensor, chunk_size: int = 128) -> torch.Tensor:
    """Per-token entropy (B, T, V) → (B, T): ``H = −Σ_v p_v log p_v`` (nats).

    Computed ``chunk_size`` positions at a time so the float32 log-softmax temporary is
    (B, chunk, V) rather than (B, T, V).
    """
    out_dtype = torch.promote_types(logits.dtype, torch.float32)
    chunks = []
    for start in range(0, logits.shape[1], chunk_size):
        logp = torch.log_softmax(logits[:, start : start + chunk_size].to(out_dtype), dim=-1)
        chunks.append(-(logp.exp() * logp).sum(-1))  # (B, chunk)
    if not chunks:
        return logits.new_zeros(logits.shape[:2], dtype=out_dtype)
    return torch.cat(chunks, dim=1)  # (B, T)


def entropy_from_logits(
    logits: torch.Tensor, mask: torch.Tensor, chunk_size: int = 128
) -> torch.Tensor:
    """Mean token entropy over unmasked tokens, (B, T, V), (B, T) → scalar.

    ``H̄ = Σ_{b,t} mask·H[b, t] / max(Σ mask, 1)`` with ``H`` from :func:`token_entropy`.
    """
    h = token_entropy(logits, chunk_size)  # (B, T)
    m = mask.to(h.dtype)
    return (h * m).sum() / m.sum().clamp(min=1)


# --------------------------------------------------------------------------- policy loss


def _masked_mean(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return (x * m).sum() / m.sum().clamp(min=1)


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    loss_type: LossType = "dapo",
    max_completion_length: int | None = None,
    ref_logp: torch.Tensor | None = None,
    beta: float = 0.0,
    num_items_in_batch: int | torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped policy-gradient loss and its metrics.

    Inputs: ``logp`` (B, T) log-probs of the sampled tokens under the policy being trained
    (carries the gradient); ``old_logp`` (B, T) under the policy that sampled them (treated as
    a constant); ``advantages`` (B,) per completion or (B, T) per token; ``mask`` (B, T).

    Per-token loss ℓ (ε_l = ``epsilon``, ε_h = ``epsilon_high`` or ε_l; DAPO "clip-higher"
    uses ε_h > ε_l, e.g. 0.2 / 0.28)::

        r     = exp(logp − old_logp)                                    token ratio
        ℓ_ppo = −min(r·A, clip(r, 1−ε_l, 1+ε_h)·A)                       grpo/bnpo/dr_grpo/dapo
        s_i   = exp(Σ_t m·(logp − old_logp) / Σ_t m)                    gspo: one ratio per seq
        ℓ     = −min(s_i·A, clip(s_i, 1−ε_l, 1+ε_h)·A)                  gspo
        ℓ     = −sg(clip(r, 1−ε_l, 1+ε_h)) · A · logp                   cispo
        ℓ    += β · (exp(ref − logp) − (ref − logp) − 1)                if β ≠ 0 (k3 KL ≥ 0)

    Aggregation over the (micro-)batch, with ``m`` the mask::

        grpo, gspo   mean_b( Σ_t m·ℓ / max(Σ_t m, 1) )      per-sequence mean, then mean
        bnpo         Σ m·ℓ / max(Σ m, 1)                    tokens of this micro-batch
        dr_grpo      Σ m·ℓ / (B · max_completion_length)    constant normaliser
        dapo, cispo  Σ m·ℓ / N                              N = num_items_in_batch, else Σ m

    For ``dapo``/``cispo`` pass ``num_items_in_batch`` = unmasked tokens in the whole
    accumulated batch: the micro-batch losses then *sum* to the full-batch loss, so
    accumulating gradients is exact. ``grpo``/``gspo``/``bnpo``/``dr_grpo`` ignore it and are
    micro-batch means (divide by the number of micro-batches when accumulating; exact for
    ``dr_grpo``, and for ``grpo``/``gspo`` with equal micro-batch sizes).

    GSPO: ε applies to the length-normalised sequence ratio s_i, which stays much closer to 1
    than token ratios; the GSPO paper uses ε_l = 3e-4, ε_h = 4e-4 — pass those explicitly, the
    0.2 default is far too loose there. The gradient reaches every token through s_i.

    CISPO (MiniMax-M1, arXiv 2506.13585, eq. 4–5): REINFORCE with a truncated, stop-gradient
    importance weight, so no token's gradient is ever dropped, only down-weighted; normalised by
    the total token count like DAPO. The paper puts no lower bound on the weight (ε_l "large")
    and tunes only ε_h: use ``epsilon=1.0`` (weight ≥ 0, i.e. no lower clip). TRL's
    ``epsilon_high=5.0`` for cispo is the absolute cap, which is our ``epsilon_high=4.0``.

    KL: only computed when ``beta != 0`` (then ``ref_logp`` is required); when ``beta == 0``
    ``ref_logp`` is ignored and no ``kl_mean`` metric is returned.

    Metrics (detached scalar tensors; means over unmasked tokens): ``ratio_mean`` (r, or s_i
    for gspo, weighted by tokens); ``clip_frac_low`` / ``clip_frac_high`` / ``clip_frac``: for
    the clipped surrogate, tokens where the clipped branch is the active one (r < 1−ε_l with
    A < 0, r > 1+ε_h with A > 0) and so gets no gradient; for cispo, tokens whose weight was
    truncated (r < 1−ε_l, r > 1+ε_h), whatever the sign of A; ``kl_mean`` if β ≠ 0.

    A row whose mask is all zero contributes 0 (and still counts in grpo's mean over B).
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
    if logp.shape != old_logp.shape or logp.shape != mask.shape:
        raise ValueError(
            f"logp {tuple(logp.shape)}, old_logp {tuple(old_logp.shape)} and mask "
            f"{tuple(mask.shape)} must all be (B, T)"
        )
    if epsilon < 0 or (epsilon_high is not None and epsilon_high < 0):
        raise ValueError("epsilon and epsilon_high must be ≥ 0")
    if loss_type == "dr_grpo" and not max_completion_length:
        raise ValueError(
            "loss_type='dr_grpo' normalises by B × max_completion_length: pass "
            "max_completion_length= (the generation length cap)"
        )
    if beta != 0.0 and ref_logp is None:
        raise ValueError("beta != 0 needs ref_logp= (reference-model log-probs, (B, T))")
    eps_low = epsilon
    eps_high = epsilon if epsilon_high is None else epsilon_high

    valid = mask.bool()  # (B, T)
    m = mask.to(logp.dtype)  # (B, T)
    adv = advantages.to(logp.dtype)
    adv = adv[:, None] if adv.dim() == 1 else adv  # (B, 1) or (B, T)
    zero = torch.zeros((), dtype=logp.dtype, device=logp.device)
    # Neutralise padding before exp: padded log-probs may be -inf/garbage.
    log_ratio = torch.where(valid, logp - old_logp.detach(), zero)  # (B, T)

    if loss_type == "gspo":
        seq_log_ratio = log_ratio.sum(-1, keepdim=True) / m.sum(-1, keepdim=True).clamp(min=1)
        ratio = torch.exp(seq_log_ratio).expand_as(log_ratio)  # (B, T), constant per row
    else:
        ratio = torch.exp(log_ratio)  # (B, T)
    clipped = ratio.clamp(1 - eps_low, 1 + eps_high)  # (B, T)

    if loss_type == "cispo":
        per_token = -clipped.detach() * adv * torch.where(valid, logp, zero)  # (B, T)
        low, high = ratio < 1 - eps_low, ratio > 1 + eps_high
    else:
        per_token = -torch.minimum(ratio * adv, clipped * adv)  # (B, T)
        low = (ratio < 1 - eps_low) & (adv < 0)
        high = (ratio > 1 + eps_high) & (adv > 0)

    metrics: dict[str, torch.Tensor] = {}
    if beta != 0.0:
        assert ref_logp is not None
        delta = torch.where(valid, ref_logp.detach() - logp, zero)  # (B, T)
        kl = torch.exp(delta) - delta - 1  # (B, T), k3 estimator, ≥ 0
        per_token = per_token + beta * kl
        metrics["kl_mean"] = _masked_mean(kl.detach(), m)

    summed = (per_token * m).sum()
    if loss_type in ("grpo", "gspo"):
        loss = ((per_token * m).sum(-1) / m.sum(-1).clamp(min=1)).mean()
    elif loss_type == "bnpo":
        loss = summed / m.sum().clamp(min=1)
    elif loss_type == "dr_grpo":
        assert max_completion_length is not None
        loss = summed / (logp.shape[0] * max_completion_length)
    else:  # dapo, cispo
        n_items = m.sum() if num_items_in_batch is None else num_items_in_batch
        loss = summed / torch.as_tensor(n_items, dtype=logp.dtype, device=logp.device).clamp(min=1)

    low, high = low.expand_as(m).to(m.dtype), high.expand_as(m).to(m.dtype)
    metrics["ratio_mean"] = _masked_mean(ratio.detach(), m)
    metrics["clip_frac_low"] = _masked_mean(low, m)
    metrics["clip_frac_high"] = _masked_mean(high, m)
    metrics["clip_frac"] = _masked_mean(torch.maximum(low, high), m)
    return loss, metrics


def micro_batch_weight(
    loss_type: LossType, rows: int, total_rows: int, tokens: float, total_tokens: int
) -> float:
    """Weight of one micro-batch's :func:`policy_loss` so the weighted sum over micro-batches
    equals the loss of the whole batch (``rows``/``tokens`` of this micro-batch, ``total_*``
    of the batch)::

        dapo, cispo              1              already ÷ num_items_in_batch of the batch
        bnpo                     tokens / N     token mean of the micro-batch → of the batch
        grpo, gspo, dr_grpo      rows / B       means over rows
    """
    if loss_type in ("dapo", "cispo"):
        return 1.0
    if loss_type == "bnpo":
        return tokens / total_tokens
    return rows / total_rows


# --------------------------------------------------------------------------- overlong


def overlong_mask(truncated: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """DAPO overlong filtering, (B,), (B, T) → (B, T): ``mask · (1 − truncated)[:, None]``.

    A completion cut off at the length cap has no real outcome, so none of its tokens train.
    """
    keep = ~truncated.bool()  # (B,)
    return mask * keep[:, None].to(mask.dtype)


def soft_overlong_penalty(lengths: torch.Tensor, max_len: int, cache_len: int) -> torch.Tensor:
    """DAPO soft overlong punishment, (B,) → (B,) in [−1, 0], added to the reward.

    With L = ``max_len`` and C = ``cache_len``::

        0                     if len ≤ L − C
        ((L − C) − len) / C   if L − C < len ≤ L      (linear from 0 to −1)
        −1                    if len > L
    """
    if not 0 < cache_len <= max_len:
        raise ValueError(
            f"need 0 < cache_len ≤ max_len, got cache_len={cache_len}, max_len={max_len}"
        )
    lengths = lengths.to(torch.promote_types(lengths.dtype, torch.float32))
    return (((max_len - cache_len) - lengths) / cache_len).clamp(min=-1.0, max=0.0)
