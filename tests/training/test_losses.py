"""Hand-computed cases for tentalis.training.losses (numbers worked out in the comments)."""

from __future__ import annotations

import math

import pytest
import torch

from tentalis.training.losses import (
    entropy_from_logits,
    group_advantages,
    micro_batch_weight,
    overlong_mask,
    policy_loss,
    rloo_advantages,
    selective_log_softmax,
    soft_overlong_penalty,
    step_index_from_spans,
    token_advantages,
    token_entropy,
)

F = torch.float64


def close(actual: torch.Tensor | float, expected: object, atol: float = 1e-6) -> None:
    torch.testing.assert_close(
        torch.as_tensor(actual, dtype=F), torch.as_tensor(expected, dtype=F), atol=atol, rtol=0
    )


# --------------------------------------------------------------------------- advantages

# Two groups of four: [1,0,0,1] (mean 0.5, centred ±0.5) and [1,1,1,1] (no signal).
REWARDS = torch.tensor([1.0, 0, 0, 1, 1, 1, 1, 1])


def test_group_advantages_group_scale_population_std() -> None:
    # population std of [1,0,0,1] = sqrt(mean(0.25×4)) = 0.5 → ±0.5/0.5 = ±1
    close(group_advantages(REWARDS, 4, "group", eps=0.0), [1, -1, -1, 1, 0, 0, 0, 0])


def test_group_advantages_unbiased_std() -> None:
    # unbiased std = sqrt(1/3) = 0.57735 → ±0.5/0.57735 = ±0.866025
    a = 0.5 / math.sqrt(1 / 3)
    close(group_advantages(REWARDS, 4, "group", eps=0.0, unbiased=True), [a, -a, -a, a, 0, 0, 0, 0])


def test_group_advantages_batch_scale() -> None:
    # batch mean 0.75; squared deviations 0.0625×6 + 0.5625×2 = 1.5; var 1.5/8 = 0.1875
    # std = 0.4330127 → ±0.5/0.4330127 = ±1.1547005; the all-ones group stays 0
    a = 0.5 / math.sqrt(0.1875)
    close(group_advantages(REWARDS, 4, "batch", eps=0.0), [a, -a, -a, a, 0, 0, 0, 0])


def test_group_advantages_none_scale_is_dr_grpo() -> None:
    close(group_advantages(REWARDS, 4, "none"), [0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0])


def test_group_advantages_eps_in_denominator() -> None:
    close(group_advantages(REWARDS, 4, eps=1e-2)[0], 0.5 / 0.51)


def test_group_advantages_ids_match_group_size() -> None:
    ids = torch.tensor([7, 7, 7, 7, 3, 3, 3, 3])
    close(group_advantages(REWARDS, ids), group_advantages(REWARDS, 4))
    # non-contiguous string ids: rows {0,1,4,5} rewards [1,0,1,1], rows {2,3,6,7} [0,1,1,1]
    # each: mean 0.75, population std sqrt(0.1875) → 0.25/0.4330 = 0.57735, −0.75/0.4330 = −1.73205
    hi, lo = 0.25 / math.sqrt(0.1875), -0.75 / math.sqrt(0.1875)
    adv = group_advantages(REWARDS, list("aabbaabb"), eps=0.0)
    close(adv, [hi, lo, lo, hi, hi, hi, hi, hi])


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
@pytest.mark.parametrize("unbiased", [False, True])
def test_all_equal_rewards_give_zero_not_nan(scale: str, unbiased: bool) -> None:
    for rewards in (torch.full((6,), 0.1), torch.zeros(6), torch.ones(1)):
        group = 3 if rewards.numel() == 6 else 1
        adv = group_advantages(rewards, group, scale, unbiased=unbiased)  # type: ignore[arg-type]
        assert torch.equal(adv, torch.zeros_like(adv))


def test_group_advantages_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="does not divide"):
        group_advantages(REWARDS, 3)
    with pytest.raises(ValueError, match="scale"):
        group_advantages(REWARDS, 4, "batchnorm")  # type: ignore[arg-type]


def test_rloo_by_hand() -> None:
    # r=1 in [1,0,0,1]: others [0,0,1] mean 1/3 → 1 − 1/3 = 2/3; r=0: others mean 2/3 → −2/3
    close(rloo_advantages(REWARDS, 4), [2 / 3, -2 / 3, -2 / 3, 2 / 3, 0, 0, 0, 0])
    # uneven groups via ids: [3] alone → 0; [1, 2, 6]: 1−4 = −3, 2−3.5 = −1.5, 6−1.5 = 4.5
    ids = torch.tensor([0, 1, 1, 1])
    close(rloo_advantages(torch.tensor([3.0, 1, 2, 6]), ids), [0, -3, -1.5, 4.5])


def test_token_advantages_outcome_plus_steps() -> None:
    outcome = torch.tensor([1.0, -1.0])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    step_index = step_index_from_spans([[(0, 2), (2, 3)], [(1, 3)]], num_tokens=4)
    assert step_index.tolist() == [[0, 0, 1, -1], [-1, 0, 0, -1]]
    step_adv = torch.tensor([[0.5, -1.0], [2.0, 99.0]])  # 99 = padding, never indexed
    # λ = 0.5. row 0: steps 0,0 → 1 + 0.25 = 1.25; step 1 → 1 − 0.5 = 0.5; no step → 1
    #          row 1: no step → −1; steps 0,0 → −1 + 1 = 0; padding → 0
    adv = token_advantages(outcome, mask, step_index, step_adv, step_weight=0.5)
    close(adv, [[1.25, 1.25, 0.5, 1.0], [-1.0, 0.0, 0.0, 0.0]])
    # outcome only: broadcast and masked
    close(token_advantages(outcome, mask), [[1, 1, 1, 1], [-1, -1, -1, 0]])
    with pytest.raises(ValueError, match="both or neither"):
        token_advantages(outcome, mask, step_index=step_index)
    with pytest.raises(ValueError, match="columns"):
        token_advantages(outcome, mask, step_index, step_adv[:, :1])


# --------------------------------------------------------------------------- policy loss

# 2×3 case. Ratios r = exp(logp − old_logp), advantages A = [+1, −2], row 1 has 2 tokens.
#   row 0 (A=+1): r = [1.25, 1.5, 0.7]     row 1 (A=−2): r = [0.5, 1.5, pad]
LOGP = [[-1.0, -2.0, -0.5], [-1.5, -0.25, -math.inf]]  # -inf at the pad: must stay harmless
RATIOS = [[1.25, 1.5, 0.7], [0.5, 1.5, 1.0]]
MASK = torch.tensor([[1.0, 1, 1], [1, 1, 0]])
ADV = torch.tensor([1.0, -2.0], dtype=F)


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    logp = torch.tensor(LOGP, dtype=F, requires_grad=True)
    old = torch.tensor(LOGP, dtype=F) - torch.tensor(RATIOS, dtype=F).log()
    old[1, 2] = 0.0
    return logp, old


# ε = 0.2, ε_high = 0.28 → clip range [0.8, 1.28]; per-token −min(r·A, clip(r)·A):
#   row 0: 1.25 → −1.25 (inside); 1.5 → −1.28 (high-clipped); 0.7 → −0.7 (A>0: r branch)
#   row 1: 0.5 → −min(−1.0, −1.6) = 1.6 (low-clipped); 1.5 → −min(−3.0, −2.56) = 3.0
# row sums −3.23 (3 tokens) and 4.6 (2 tokens); total 1.37 over 5 tokens
@pytest.mark.parametrize(
    ("loss_type", "kwargs", "expected"),
    [
        ("grpo", {}, (-3.23 / 3 + 4.6 / 2) / 2),  # 0.6116667
        ("bnpo", {}, 1.37 / 5),  # 0.274
        ("dr_grpo", {"max_completion_length": 4}, 1.37 / (2 * 4)),  # 0.17125
        ("dapo", {}, 1.37 / 5),
        ("dapo", {"num_items_in_batch": 10}, 1.37 / 10),
    ],
)
def test_policy_loss_aggregations(loss_type: str, kwargs: dict, expected: float) -> None:
    logp, old = inputs()
    loss, metrics = policy_loss(
        logp, old, ADV, MASK, epsilon=0.2, epsilon_high=0.28, loss_type=loss_type, **kwargs
    )
    close(loss, expected)
    close(metrics["clip_frac_low"], 1 / 5)  # row 1 token 0
    close(metrics["clip_frac_high"], 1 / 5)  # row 0 token 1
    close(metrics["clip_frac"], 2 / 5)
    close(metrics["ratio_mean"], (1.25 + 1.5 + 0.7 + 0.5 + 1.5) / 5)  # 1.09
    assert "kl_mean" not in metrics
    loss.backward()
    assert logp.grad is not None and torch.isfinite(logp.grad).all()
    assert logp.grad[1, 2] == 0


def test_clip_higher_asymmetry() -> None:
    # symmetric ε = 0.2 → [0.8, 1.2]: row 0 becomes [−1.2, −1.2, −0.7] (1.25 now clipped too);
    # row 1 token 1 (A<0, r=1.5): −min(−3.0, −2.4) = 3.0, unchanged. bnpo: (−3.1 + 4.6)/5 = 0.3
    logp, old = inputs()
    loss, metrics = policy_loss(logp, old, ADV, MASK, epsilon=0.2, loss_type="bnpo")
    close(loss, 0.3)
    close(metrics["clip_frac_high"], 2 / 5)
    loss.backward()
    # clipped tokens get no gradient; unclipped ones get −r·A/5 (d(r)/d logp = r)
    close(logp.grad, [[0, 0, -0.7 / 5], [0, 2 * 1.5 / 5, 0]])


def test_on_policy_grpo_gradient_is_minus_a_over_len() -> None:
    # r ≡ 1, loss = −(1/B) Σ_i (1/L_i) Σ_t A_i → ∂/∂logp = −A_i / (B·L_i)
    # row 0: −1/(2·3) = −1/6; row 1: 2/(2·2) = 0.5; padding 0
    logp = torch.tensor(LOGP, dtype=F).nan_to_num(neginf=0.0).requires_grad_()
    loss, metrics = policy_loss(logp, logp.detach(), ADV, MASK, loss_type="grpo")
    loss.backward()
    close(logp.grad, [[-1 / 6, -1 / 6, -1 / 6], [0.5, 0.5, 0.0]])
    close(metrics["ratio_mean"], 1.0)
    close(metrics["clip_frac"], 0.0)


def test_per_token_advantages_accepted() -> None:
    logp, old = inputs()
    adv_tok = ADV[:, None].expand(2, 3)
    a, _ = policy_loss(logp, old, ADV, MASK, loss_type="grpo")
    b, _ = policy_loss(logp, old, adv_tok, MASK, loss_type="grpo")
    close(a, b)


def test_gspo_sequence_ratio_by_hand() -> None:
    # s_0 = (1.25·1.5·0.7)^(1/3) = 1.3125^(1/3) = 1.0948810; s_1 = (0.5·1.5)^(1/2) = 0.8660254
    s0, s1 = 1.3125 ** (1 / 3), 0.75**0.5
    logp, old = inputs()
    loss, metrics = policy_loss(
        logp, old, ADV, MASK, epsilon=0.2, epsilon_high=0.28, loss_type="gspo"
    )
    # both inside [0.8, 1.28]: ℓ_0 = −s_0, ℓ_1 = 2·s_1; mean over sequences
    close(loss, (-s0 + 2 * s1) / 2)  # 0.3185849
    close(metrics["ratio_mean"], (3 * s0 + 2 * s1) / 5)  # token-weighted
    loss.backward()
    # ∂ℓ_i/∂logp_t = −A_i · s_i / L_i, halved by the mean over B = 2
    close(logp.grad, [[-s0 / 6] * 3, [2 * s1 / 4, 2 * s1 / 4, 0]])

    # GSPO-sized clip range [0.9, 1.05]: s_0 > 1.05 with A>0 → −1.05; s_1 < 0.9 with A<0 →
    # −min(−1.732, −1.8) = 1.8. Both clipped: loss (−1.05 + 1.8)/2 = 0.375, zero gradient.
    logp, old = inputs()
    loss, metrics = policy_loss(
        logp, old, ADV, MASK, epsilon=0.1, epsilon_high=0.05, loss_type="gspo"
    )
    close(loss, 0.375)
    close(metrics["clip_frac"], 1.0)
    loss.backward()
    close(logp.grad, torch.zeros(2, 3))


def test_cispo_by_hand_weight_is_stop_gradient() -> None:
    # w = clip(r, 0.8, 1.28): row 0 [1.25, 1.28, 0.8], row 1 [0.8, 1.28]
    # ℓ = −w·A·logp: row 0 [1.25·1, 1.28·2, 0.8·0.5] = [1.25, 2.56, 0.4]
    #               row 1 [2·0.8·(−1.5), 2·1.28·(−0.25)] = [−2.4, −0.64]; total 1.17 / 5 tokens
    logp, old = inputs()
    loss, metrics = policy_loss(
        logp, old, ADV, MASK, epsilon=0.2, epsilon_high=0.28, loss_type="cispo"
    )
    close(loss, 1.17 / 5)
    # weights truncated: low r<0.8 (0.7, 0.5), high r>1.28 (1.5, 1.5), whatever A's sign
    close(metrics["clip_frac_low"], 2 / 5)
    close(metrics["clip_frac_high"], 2 / 5)
    loss.backward()
    # gradient only through logp: −w·A/5 (a live weight would add −r·A·logp/5 terms)
    close(logp.grad, [[-1.25 / 5, -1.28 / 5, -0.8 / 5], [1.6 / 5, 2.56 / 5, 0]])


def test_k3_kl_by_hand() -> None:
    # d = ref − logp = [ln2, −ln2, 0 | 0, ln2, pad]; kl = e^d − d − 1:
    #   ln2 → 2 − 0.693147 − 1 = 0.306853;  −ln2 → 0.5 + 0.693147 − 1 = 0.193147
    # with A = 0 the loss is β·Σkl/5 = 0.1 · 0.806853/5 = 0.01613706
    ln2 = math.log(2)
    logp = torch.tensor([[-1.0, -1, -1], [-1, -1, -1]], dtype=F, requires_grad=True)
    ref = logp.detach() + torch.tensor([[ln2, -ln2, 0], [0, ln2, 5.0]], dtype=F)
    zero_adv = torch.zeros(2, dtype=F)
    loss, metrics = policy_loss(logp, logp.detach(), zero_adv, MASK, ref_logp=ref, beta=0.1)
    kl = [2 - ln2 - 1, 0.5 + ln2 - 1, 0, 0, 2 - ln2 - 1]
    close(metrics["kl_mean"], sum(kl) / 5)
    close(loss, 0.1 * sum(kl) / 5)
    # ∂kl/∂logp = 1 − e^d, times β/5
    loss.backward()
    close(logp.grad, [[0.1 * (1 - 2) / 5, 0.1 * 0.5 / 5, 0], [0, 0.1 * (1 - 2) / 5, 0]])


def test_k3_kl_nonnegative_and_zero_at_ref() -> None:
    g = torch.Generator().manual_seed(0)
    logp = -torch.rand(4, 7, generator=g, dtype=F) * 3
    mask = torch.ones(4, 7)
    zero_adv = torch.zeros(4, dtype=F)
    _, same = policy_loss(logp, logp, zero_adv, mask, ref_logp=logp, beta=0.5)
    close(same["kl_mean"], 0.0)
    ref = -torch.rand(4, 7, generator=g, dtype=F) * 3
    loss, m = policy_loss(logp, logp, zero_adv, mask, ref_logp=ref, beta=0.5)
    assert m["kl_mean"] > 0 and loss > 0


def test_beta_zero_needs_no_ref_and_reports_no_kl() -> None:
    logp, old = inputs()
    _, metrics = policy_loss(logp, old, ADV, MASK, beta=0.0, ref_logp=None)
    assert "kl_mean" not in metrics
    with pytest.raises(ValueError, match="ref_logp"):
        policy_loss(logp, old, ADV, MASK, beta=0.1)
    with pytest.raises(ValueError, match="max_completion_length"):
        policy_loss(logp, old, ADV, MASK, loss_type="dr_grpo")
    with pytest.raises(ValueError, match="loss_type"):
        policy_loss(logp, old, ADV, MASK, loss_type="ppo")  # type: ignore[arg-type]


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo", "gspo", "cispo"])
def test_empty_completion_is_finite(loss_type: str) -> None:
    logp = torch.tensor([[-1.0, -2.0], [-math.inf, -math.inf]], dtype=F, requires_grad=True)
    old = torch.tensor([[-1.2, -1.0], [0.0, 0.0]], dtype=F)
    mask = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    loss, metrics = policy_loss(
        logp,
        old,
        ADV,
        mask,
        loss_type=loss_type,  # type: ignore[arg-type]
        max_completion_length=2,
        ref_logp=old,
        beta=0.04,
    )
    assert torch.isfinite(loss)
    assert all(torch.isfinite(v) for v in metrics.values())
    loss.backward()
    assert logp.grad is not None and torch.isfinite(logp.grad).all()
    assert torch.equal(logp.grad[1], torch.zeros(2, dtype=F))
    # an all-empty batch is finite too (0 loss)
    loss, _ = policy_loss(
        logp,
        old,
        ADV,
        torch.zeros(2, 2),
        loss_type=loss_type,  # type: ignore[arg-type]
        max_completion_length=2,
    )
    assert loss == 0


# ------------------------------------------------------- micro-batch invariant (accumulation)


def _random_batch(seed: int, b: int = 6, t: int = 5) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    logp = -torch.rand(b, t, generator=g, dtype=F) * 2
    old = logp + (torch.rand(b, t, generator=g, dtype=F) - 0.5) * 0.8  # ratios ≈ e^±0.4
    ref = logp + (torch.rand(b, t, generator=g, dtype=F) - 0.5)
    adv = torch.randn(b, generator=g, dtype=F)
    lengths = torch.tensor([5, 1, 3, 0, 4, 2])
    mask = (torch.arange(t)[None, :] < lengths[:, None]).to(F)
    return logp, old, ref, adv, mask


@pytest.mark.parametrize("loss_type", ["dapo", "cispo", "dr_grpo"])
def test_micro_batches_sum_to_full_batch_gradient(loss_type: str) -> None:
    logp, old, ref, adv, mask = _random_batch(0)
    kw = {
        "loss_type": loss_type,
        "max_completion_length": 5,
        "ref_logp": ref,
        "beta": 0.04,
        "epsilon_high": 0.28,
    }
    full = logp.clone().requires_grad_()
    policy_loss(full, old, adv, mask, **kw)[0].backward()

    n_items = mask.sum()  # tokens in the whole accumulated batch
    micro = logp.clone().requires_grad_()
    for rows in (slice(0, 2), slice(2, 4), slice(4, 6)):
        kw_mb = {**kw, "ref_logp": ref[rows]}
        loss, _ = policy_loss(
            micro[rows], old[rows], adv[rows], mask[rows], num_items_in_batch=n_items, **kw_mb
        )
        if loss_type == "dr_grpo":
            loss = loss / 3  # constant normaliser: divide by the number of micro-batches
        loss.backward()
    assert full.grad is not None and micro.grad is not None
    torch.testing.assert_close(micro.grad, full.grad, rtol=0, atol=1e-12)


def test_micro_batches_without_global_count_are_not_exact() -> None:
    # the control for the test above: per-micro-batch token means weight tokens unequally
    logp, old, _, adv, mask = _random_batch(0)
    full = logp.clone().requires_grad_()
    policy_loss(full, old, adv, mask, loss_type="dapo")[0].backward()
    micro = logp.clone().requires_grad_()
    for rows in (slice(0, 2), slice(2, 4), slice(4, 6)):
        (
            policy_loss(micro[rows], old[rows], adv[rows], mask[rows], loss_type="dapo")[0] / 3
        ).backward()
    assert full.grad is not None and micro.grad is not None
    assert not torch.allclose(micro.grad, full.grad)



def test_micro_batch_weight_by_hand() -> None:
    # a micro-batch of 2 rows and 3 trainable tokens out of 6 rows and 12 tokens
    assert micro_batch_weight("dapo", 2, 6, 3.0, 12) == 1.0
    assert micro_batch_weight("cispo", 2, 6, 3.0, 12) == 1.0
    assert micro_batch_weight("bnpo", 2, 6, 3.0, 12) == 0.25
    for loss_type in ("grpo", "gspo", "dr_grpo"):
        assert micro_batch_weight(loss_type, 2, 6, 3.0, 12) == 2 / 6  # type: ignore[arg-type]


@pytest.mark.parametrize("loss_type", ["grpo", "gspo", "bnpo", "dr_grpo", "dapo", "cispo"])
def test_weighted_micro_batch_losses_sum_to_the_batch_loss(loss_type: str) -> None:
    logp, old, ref, adv, mask = _random_batch(1)
    kw = {"loss_type": loss_type, "max_completion_length": 5, "beta": 0.04}
    n_items = int(mask.sum())
    full, _ = policy_loss(logp, old, adv, mask, ref_logp=ref, num_items_in_batch=n_items, **kw)
    total = 0.0
    for rows in (slice(0, 1), slice(1, 4), slice(4, 6)):  # uneven micro-batches
        loss, _ = policy_loss(logp[rows], old[rows], adv[rows], mask[rows], ref_logp=ref[rows],
                              num_items_in_batch=n_items, **kw)
        b, tokens = logp[rows].shape[0], float(mask[rows].sum())
        total += float(loss) * micro_batch_weight(loss_type, b, 6, tokens, n_items)  # type: ignore[arg-type]
    close(total, float(full), atol=1e-12)


# --------------------------------------------------------------------------- log-probs


def test_selective_log_softmax_matches_log_softmax_gather() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 4, 11, generator=g) * 4
    ids = torch.randint(0, 11, (3, 4), generator=g)
    expected = torch.log_softmax(logits, -1).gather(-1, ids[..., None]).squeeze(-1)
    torch.testing.assert_close(selective_log_softmax(logits, ids), expected)
    # bf16 logits: computed in float32 from the bf16 values
    bf = logits.bfloat16()
    out = selective_log_softmax(bf, ids)
    assert out.dtype == torch.float32
    ref = torch.log_softmax(bf.float(), -1).gather(-1, ids[..., None]).squeeze(-1)
    torch.testing.assert_close(out, ref)
    # by hand: logits [0, ln3] → p = [1/4, 3/4]
    two = torch.tensor([[[0.0, math.log(3)]]])
    close(selective_log_softmax(two, torch.tensor([[1]])), [[math.log(0.75)]])


def test_selective_log_softmax_gradient_matches() -> None:
    logits = torch.randn(2, 3, 5, dtype=F, requires_grad=True)
    ids = torch.randint(0, 5, (2, 3))
    (g1,) = torch.autograd.grad(selective_log_softmax(logits, ids).sum(), logits)
    ref = torch.log_softmax(logits, -1).gather(-1, ids[..., None]).sum()
    (g2,) = torch.autograd.grad(ref, logits)
    torch.testing.assert_close(g1, g2)


def test_entropy_uniform_is_log_v_and_chunked() -> None:
    logits = torch.zeros(2, 7, 13)
    mask = torch.ones(2, 7)
    close(entropy_from_logits(logits, mask, chunk_size=3), math.log(13), atol=1e-6)
    # p = [1/4, 3/4] → H = −(¼ ln ¼ + ¾ ln ¾) = 0.3465736 + 0.2157616 = 0.5623351
    two = torch.tensor([[[0.0, math.log(3)], [0.0, 0.0]]])
    close(token_entropy(two), [[0.5623351, math.log(2)]], atol=1e-6)
    # masked mean: only the first token counts
    close(entropy_from_logits(two, torch.tensor([[1, 0]])), 0.5623351, atol=1e-6)
    # chunking does not change the answer
    g = torch.Generator().manual_seed(2)
    rnd = torch.randn(3, 10, 6, generator=g)
    torch.testing.assert_close(token_entropy(rnd, chunk_size=3), token_entropy(rnd, chunk_size=64))


# --------------------------------------------------------------------------- overlong


def test_overlong_mask_zeroes_truncated_rows() -> None:
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 0, 0]])
    out = overlong_mask(torch.tensor([False, True, False]), mask)
    assert out.tolist() == [[1, 1, 0], [0, 0, 0], [1, 0, 0]]
    assert out.dtype == mask.dtype


def test_soft_overlong_penalty_boundaries() -> None:
    # L = 10, C = 4: 0 up to 6, then (6 − len)/4: 7 → −0.25, 8 → −0.5, 10 → −1; beyond → −1
    lengths = torch.tensor([3, 6, 7, 8, 10, 11, 50])
    close(soft_overlong_penalty(lengths, 10, 4), [0, 0, -0.25, -0.5, -1, -1, -1])
    with pytest.raises(ValueError, match="cache_len"):
        soft_overlong_penalty(lengths, 10, 0)
    with pytest.raises(ValueError, match="cache_len"):
        soft_overlong_penalty(lengths, 4, 10)
