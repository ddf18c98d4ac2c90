"""PolicyTrainer on the tiny random Llama: what trains, exact accumulation, KL, skips."""

from __future__ import annotations

import contextlib
import math
import random

import pytest
import torch
from pydantic import ValidationError

from tentalis.models.tiny import build_tiny_llama
from tentalis.training import PolicyTrainer, Rollout, TrainConfig, group_by

MARK = 42  # the token that earns the reward


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_llama(tmp_path_factory.mktemp("tiny"))


def make_batch(
    seed: int = 0, groups: int = 2, size: int = 4, *, equal: bool = False
) -> list[Rollout]:
    """Groups of ``size`` completions of varied length; odd members contain MARK and score 1
    (or, with ``equal``, everyone scores 1). Two steps per completion with varied scores."""
    rng = random.Random(seed)
    out = []
    for g in range(groups):
        prompt = [rng.randrange(3, 500) for _ in range(3 + 2 * g)]
        for i in range(size):
            n = 5 + (i * 3 + g) % 7
            completion = [rng.randrange(50, 500) for _ in range(n)]
            if i % 2:
                completion[1] = MARK
            out.append(
                Rollout(
                    rollout_id=f"r{g}{i}",
                    group_id=f"g{g}",
                    task_id=f"t{g}",
                    prompt_ids=prompt,
                    completion_ids=completion,
                    reward=1.0 if equal else float(i % 2),
                    step_spans=[(0, 2), (2, n - 1)],
                    step_rewards=[0.5, 0.5] if equal else [0.25 * i, 1.0 - 0.2 * i],
                )
            )
    return out


def config(**kw) -> TrainConfig:
    """float32 unless a test asks otherwise: most tests here compare gradients exactly."""
    return TrainConfig(**({"output_dir": "unused", "seed": 0, "dtype": "float32"} | kw))


def lora_params(trainer: PolicyTrainer) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_" in n}


def randomise_lora_b(trainer: PolicyTrainer, seed: int = 1) -> None:
    """LoRA B starts at 0 (so A has no gradient); give both factors a gradient to compare."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in trainer.model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)


def grads(trainer: PolicyTrainer) -> dict[str, torch.Tensor]:
    return {
        n: p.grad.detach().clone()
        for n, p in trainer.model.named_parameters()
        if p.requires_grad and p.grad is not None
    }


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_training_moves_only_lora_and_favours_the_rewarded_token(model_dir, dtype) -> None:
    trainer = PolicyTrainer(model_dir, config(learning_rate=5e-3, micro_batch_size=3,
                                              dtype=dtype))
    assert trainer.device.type == "cpu"  # device="auto" on a machine without CUDA
    for name, p in trainer.model.named_parameters():  # bf16 base, float32 LoRA
        want = torch.float32 if "lora_" in name else getattr(torch, dtype)
        assert p.dtype == want, name
    base_before = {
        n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_" not in n
    }
    lora_before = lora_params(trainer)
    rollouts = make_batch()
    rewarded = [r for r in rollouts if r.reward == 1.0]
    others = [r for r in rollouts if r.reward == 0.0]

    def mean_logp(rs: list[Rollout]) -> float:
        return float(torch.stack([lp.sum() for lp in trainer.completion_logprobs(rs)]).mean())

    good0, bad0 = mean_logp(rewarded), mean_logp(others)
    for _ in range(4):
        metrics = trainer.train_step(group_by(rollouts))
        assert not metrics.skipped
    assert trainer.step == 4
    for name, value in trainer.model.named_parameters():
        if "lora_" not in name:
            assert torch.equal(value, base_before[name]), f"base weight {name} changed"
    lora_after = lora_params(trainer)
    assert any(not torch.equal(lora_after[n], lora_before[n]) for n in lora_before)
    assert mean_logp(rewarded) > good0 + 0.1
    assert mean_logp(others) < bad0 - 0.1
    values = metrics.as_dict()
    for key in ("loss", "reward_mean", "entropy", "grad_norm", "tokens_per_s", "mfu", "flops"):
        assert math.isfinite(values[key]), key
    assert metrics.completion_tokens == sum(len(r.completion_ids) for r in rollouts)
    assert 0 < metrics.mfu < 1 and metrics.step_time_s > 0 and "kl" not in values


@pytest.mark.parametrize("loss_type", ["dapo", "grpo", "bnpo", "dr_grpo", "gspo", "cispo"])
def test_micro_batch_1x4_equals_4x1(model_dir, loss_type: str) -> None:
    rollouts = make_batch(seed=3, groups=1)  # 4 sequences of different lengths
    results = []
    for micro in (1, 4):
        cfg = config(loss_type=loss_type, micro_batch_size=micro, max_new_tokens=16)
        trainer = PolicyTrainer(model_dir, cfg)
        randomise_lora_b(trainer)
        metrics = trainer.compute_gradients(group_by(rollouts))
        results.append((metrics, grads(trainer)))
    (m1, g1), (m4, g4) = results
    assert g1.keys() == g4.keys() and len(g1) > 0
    assert any(g.abs().max() > 0 for g in g1.values())
    for name in g1:
        torch.testing.assert_close(g1[name], g4[name], atol=1e-6, rtol=1e-4, msg=name)
    assert m1.loss == pytest.approx(m4.loss, abs=1e-6)
    assert m1.clip_frac == pytest.approx(m4.clip_frac, abs=1e-9)


def count_disable_adapter(trainer: PolicyTrainer) -> list[int]:
    calls = [0]
    original = trainer.model.disable_adapter

    @contextlib.contextmanager
    def counting():
        calls[0] += 1
        with original():
            yield

    trainer.model.disable_adapter = counting
    return calls


def test_kl_reference_pass_only_when_beta_positive(model_dir) -> None:
    rollouts = make_batch()
    plain = PolicyTrainer(model_dir, config(beta=0.0, micro_batch_size=4))
    calls = count_disable_adapter(plain)
    assert "kl" not in plain.train_step(group_by(rollouts)).as_dict()
    assert calls[0] == 0

    kl = PolicyTrainer(model_dir, config(beta=0.1, micro_batch_size=4, learning_rate=1e-2))
    calls = count_disable_adapter(kl)
    first = kl.train_step(group_by(rollouts))
    assert calls[0] == 2  # one reference pass per micro-batch (8 sequences / 4)
    assert first.kl == pytest.approx(0.0, abs=1e-7)  # LoRA B = 0: policy == base
    second = kl.train_step(group_by(rollouts))
    assert calls[0] == 4 and second.kl is not None and second.kl > 0
    assert second.flops == pytest.approx(first.flops)  # β > 0 counts the third pass
    assert first.flops == pytest.approx(
        plain.step_flops(first.tokens, first.completion_tokens) * 3 / 2
    )


@pytest.mark.parametrize("dynamic", [True, False])
def test_all_zero_variance_batch_is_skipped(model_dir, dynamic: bool) -> None:
    trainer = PolicyTrainer(model_dir, config(dynamic_sampling=dynamic))
    before = lora_params(trainer)
    metrics = trainer.train_step(group_by(make_batch(equal=True)))
    assert metrics.skipped and "variance" in metrics.skip_reason
    assert trainer.step == 0 and metrics.zero_variance_frac == 1.0
    assert all(math.isfinite(v) for v in metrics.scalars().values())
    assert all(torch.equal(before[n], p) for n, p in lora_params(trainer).items())
    assert all(p.grad is None for p in trainer.trainable)
    assert trainer.train_step([]).skip_reason == "empty batch"


def test_dynamic_sampling_drops_only_groups_without_signal(model_dir) -> None:
    mixed = make_batch(groups=1) + [
        Rollout(f"z{i}", "flat", "tz", [5, 6], [7, 8, 9], 1.0) for i in range(4)
    ]
    on = PolicyTrainer(model_dir, config(dynamic_sampling=True)).train_step(group_by(mixed))
    assert on.groups_dropped == 1 and on.sequences == 4 and on.zero_variance_frac == 0.5
    off = PolicyTrainer(model_dir, config(dynamic_sampling=False)).train_step(group_by(mixed))
    assert off.groups_dropped == 0 and off.sequences == 8


def test_step_scores_alone_carry_signal_when_lambda_positive(model_dir) -> None:
    rollouts = [
        Rollout(f"s{i}", "g", "t", [5, 6], [7, 8, 9, 10], 1.0, [(0, 2)], [0.2 * i])
        for i in range(4)
    ]
    assert not PolicyTrainer(model_dir, config()).train_step(group_by(rollouts)).skipped
    outcome_only = PolicyTrainer(model_dir, config(step_reward_weight=0.0))
    assert outcome_only.train_step(group_by(rollouts)).skipped


def test_truncated_completions_are_masked(model_dir) -> None:
    base = make_batch(groups=1)
    cut = base[0].__class__(**{**base[0].__dict__, "truncated": True})
    # Same truncated row with different tokens: masked, so the gradient cannot change.
    other = cut.__class__(**{**cut.__dict__, "completion_ids": [9] * len(cut.completion_ids)})
    results = []
    for first in (cut, other):
        trainer = PolicyTrainer(model_dir, config(overlong="mask"))
        randomise_lora_b(trainer)
        metrics = trainer.compute_gradients(group_by([first, *base[1:]]))
        results.append((metrics, grads(trainer)))
    (m_a, g_a), (_, g_b) = results
    assert m_a.completion_tokens == sum(len(r.completion_ids) for r in base[1:])
    assert m_a.truncated_frac == 0.25
    for name in g_a:
        torch.testing.assert_close(g_a[name], g_b[name], atol=1e-7, rtol=1e-5)
    unmasked = PolicyTrainer(model_dir, config(overlong="none"))
    counted = unmasked.compute_gradients(group_by([cut, *base[1:]]))
    assert counted.completion_tokens == sum(len(r.completion_ids) for r in base)


@pytest.mark.parametrize("loss_type", ["dapo", "grpo", "bnpo", "dr_grpo", "gspo", "cispo"])
def test_skipping_fully_masked_rows_changes_nothing_but_the_work(model_dir, loss_type) -> None:
    rollouts = make_batch(seed=5, groups=2)
    rollouts = [r.__class__(**{**r.__dict__, "truncated": i in (0, 3, 6)})
                for i, r in enumerate(rollouts)]
    results = []
    for skip in (True, False):
        cfg = config(loss_type=loss_type, overlong="mask", micro_batch_size=3, max_new_tokens=16)
        trainer = PolicyTrainer(model_dir, cfg)
        trainer.skip_untrainable_rows = skip
        randomise_lora_b(trainer)
        metrics = trainer.compute_gradients(group_by(rollouts))
        results.append((metrics, grads(trainer)))
    (fast, g_fast), (full, g_full) = results
    assert any(g.abs().max() > 0 for g in g_fast.values())
    for name in g_full:
        torch.testing.assert_close(g_fast[name], g_full[name], atol=1e-7, rtol=1e-5, msg=name)
    assert fast.loss == pytest.approx(full.loss, abs=1e-7)
    assert fast.completion_tokens == full.completion_tokens
    skipped = sum(r.num_tokens for i, r in enumerate(rollouts) if i in (0, 3, 6))
    assert fast.tokens == full.tokens - skipped  # the truncated rows never ran


def test_soft_overlong_penalty_turns_length_into_signal(model_dir) -> None:
    # Equal outcomes; one completion runs into the last 4 tokens before the 12-token cap.
    rollouts = [Rollout(f"p{i}", "g", "t", [5], [7] * (4 + 6 * (i == 0)), 1.0) for i in range(4)]
    cfg = config(overlong="penalty", max_new_tokens=12, overlong_cache_len=4)
    trainer = PolicyTrainer(model_dir, cfg)
    (group,) = group_by(rollouts)
    assert not group.has_signal() and trainer.has_signal(group)  # dynamic sampling keeps it
    assert trainer.shaped(group).rewards == [0.5, 1.0, 1.0, 1.0]  # 10 tokens: halfway down
    metrics = trainer.train_step([group])
    assert not metrics.skipped
    masked = PolicyTrainer(model_dir, config(overlong="mask", max_new_tokens=12))
    assert not masked.has_signal(group)


def test_behavior_logprobs_enter_the_ratio(model_dir) -> None:
    rollouts = [
        r.__class__(**{**r.__dict__, "behavior_logprobs": [-20.0] * len(r.completion_ids)})
        for r in make_batch(groups=1)
    ]
    metrics = PolicyTrainer(model_dir, config(old_logprobs="behavior")).train_step(
        group_by(rollouts)
    )
    assert metrics.ratio_mean > 1.5 and metrics.clip_frac_high > 0.3  # far off-policy
    same = PolicyTrainer(model_dir, config()).train_step(group_by(rollouts))
    assert same.ratio_mean == pytest.approx(1.0) and same.clip_frac == 0.0


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing`:FutureWarning")
def test_save_adapter_is_loadable_by_peft(model_dir, tmp_path) -> None:
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    trainer = PolicyTrainer(model_dir, config(learning_rate=1e-2))
    trainer.train_step(group_by(make_batch()))
    out = trainer.save_adapter(tmp_path / "adapter")
    assert {p.name for p in out.iterdir()} >= {"adapter_config.json", "adapter_model.safetensors"}
    saved = load_file(out / "adapter_model.safetensors")
    assert all("lora_" in k for k in saved)
    mine = trainer.adapter_state_dict()
    assert saved.keys() == mine.keys()
    assert all(torch.equal(saved[k], mine[k]) for k in saved)
    loaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_dir), out)
    ids = torch.tensor([[5, 6, 7, MARK, 9]])
    with torch.no_grad():
        expected = trainer.model.eval()(input_ids=ids).logits
        torch.testing.assert_close(loaded.eval()(input_ids=ids).logits, expected)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_requested_without_gpu_says_so(model_dir) -> None:
    from tentalis.errors import TrainingError

    with pytest.raises(TrainingError, match="device='auto'"):
        PolicyTrainer(model_dir, config(device="cuda"))


def test_config_validation_says_what_to_do() -> None:
    with pytest.raises(ValidationError, match="epsilon_high"):
        TrainConfig(epsilon=0.3, epsilon_high=0.2)
    with pytest.raises(ValidationError, match="micro_batch_size"):
        TrainConfig(micro_batch_size=0)
    with pytest.raises(ValidationError, match="max_new_tokens"):
        TrainConfig(loss_type="dr_grpo")
    with pytest.raises(ValidationError, match="max_new_tokens"):
        TrainConfig(overlong="penalty")
    with pytest.raises(ValidationError, match="overlong_cache_len"):
        TrainConfig(overlong="penalty", max_new_tokens=8, overlong_cache_len=9)
    with pytest.raises(ValidationError):
        TrainConfig(lora_rank=8)  # typo: unknown fields are refused
    assert TrainConfig(overlong="penalty", max_new_tokens=64).cache_len == 16


def test_rollouts_with_foreign_token_ids_are_dropped_not_fatal(model_dir) -> None:
    rollouts = make_batch()
    bad = Rollout("bad", "g0", "t0", [1, 2], [10_000, 5], 0.0)  # not this model's vocabulary
    trainer = PolicyTrainer(model_dir, config())
    metrics = trainer.train_step(group_by([bad, *rollouts[1:]]))
    assert metrics.invalid_rollouts == 1 and metrics.sequences == 7 and not metrics.skipped


def prefixed_batch(seed: int = 3, prefix: int = 24) -> list[Rollout]:
    """Two groups whose prompts share ``prefix`` leading tokens (a system prompt), then
    differ (the question), with completions of varied length."""
    rng = random.Random(seed)
    system = [rng.randrange(3, 500) for _ in range(prefix)]
    out = []
    for g in range(2):
        prompt = system + [rng.randrange(3, 500) for _ in range(4 + 3 * g)]
        for i in range(4):
            completion = [rng.randrange(50, 500) for _ in range(4 + (i * 3 + g) % 6)]
            if i % 2:
                completion[1] = MARK
            out.append(Rollout(f"r{g}{i}", f"g{g}", f"t{g}", prompt, completion, float(i % 2)))
    return out


@pytest.mark.parametrize(("loss_type", "attention"), [("dapo", "eager"), ("grpo", "sdpa")])
def test_a_shared_prefix_and_each_groups_prompt_run_once_with_the_same_gradients(
    model_dir, loss_type, attention
) -> None:
    rollouts = prefixed_batch()
    results = []
    for share in (True, False):
        trainer = PolicyTrainer(model_dir, config(loss_type=loss_type, micro_batch_size=8,
                                                  share_prefix=share, attention=attention))
        randomise_lora_b(trainer)
        metrics = trainer.compute_gradients(group_by(rollouts))
        logps = trainer.completion_logprobs(rollouts)
        results.append((metrics, grads(trainer), logps))
    (shared, g_shared, lp_shared), (full, g_full, lp_full) = results
    assert any(g.abs().max() > 0 for g in g_shared.values())
    for name in g_full:
        torch.testing.assert_close(g_shared[name], g_full[name], atol=1e-6, rtol=1e-4, msg=name)
    for a, b in zip(lp_shared, lp_full, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert shared.loss == pytest.approx(full.loss, abs=1e-6)
    assert shared.tokens == full.tokens  # the same rows were trained on
    # ... but the 24-token prefix ran once for the 8 rows instead of 8 times, the rest of
    # each group's prompt (4 and 7 tokens) once for its 4 rows, and no row's last token
    assert shared.flops < full.flops
    executed = full.tokens - 7 * 24 - 3 * (4 + 7) - 8
    assert trainer.step_flops(executed, shared.completion_tokens) == shared.flops
