"""``PolicyTrainer``: one LoRA policy, trained from scored rollout groups (GRPO/DAPO family).

One :meth:`PolicyTrainer.train_step` is one optimiser update from a batch of groups::

    rewards (+ DAPO soft overlong penalty)      → drop groups with no signal (dynamic sampling)
    rollout_advantages: outcome + λ·step        → A (B, T) per completion token
    for each micro-batch (rows sorted by length, right-padded):
        kv     = decoder(shared prefix), once, repeated             (share_prefix)
        kv     = decoder(rest of each distinct prompt | kv), once, selected per row
        hidden = decoder(completion | kv)                           # (b, Tc, H)
        logits = lm_head(hidden at completion positions only)        # (b, Tc, V)
        logp   = selective_log_softmax(logits, completion ids)       # (b, Tc)
        old    = logp.detach()       (on-policy: one update per batch, so ratio = 1 and the
                                      clip only matters for old_logprobs='behavior')
        ref    = same pass with the adapter disabled, no grad       (only when β > 0)
        (w · policy_loss(logp, old, A, mask, …)).backward()         # accumulate
    clip grad norm → AdamW step

Accumulation is exact: the micro-batch weights ``w`` make the summed micro-batch losses equal
the full-batch loss for every loss type — dapo/cispo get ``num_items_in_batch`` = trainable
tokens of the whole batch (w = 1); grpo/gspo/dr_grpo are means over rows (w = b/B); bnpo is
normalised by the tokens of the whole batch (w = n_b/N), which makes it equal to dapo here
(TRL normalises bnpo per process). So micro_batch 1 × 4 and 4 × 1 give the same gradients.

Only completion positions reach the LM head: the decoder runs once and the (vocab × hidden)
matmul is applied to the gathered completion positions only. This assumes
``logits = lm_head(hidden)`` (Llama, Qwen, Mistral, SmolLM); models with logit soft-capping
or scaling are refused. Log-probs are of the untempered logits, like the workers' logprobs.

FLOPs (for MFU, :meth:`PolicyTrainer.step_flops`): forward ≈ 2·N_body·T_all + 2·N_head·T_cmp
with N_body the decoder's matmul parameters (embedding lookup excluded), N_head the LM head's,
T_all the tokens that ran (a micro-batch's shared prefix and each distinct prompt once),
T_cmp completion tokens. The LoRA backward needs activation gradients through every frozen
matmul (≈ the forward again) but no weight gradients for them, so backward ≈ 1 × forward,
not the 2 × of full fine-tuning: step ≈ 2 × forward (+ 1 forward when β > 0). Attention
score FLOPs (≈ 4·layers·L·H per token) and padding are not counted.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tentalis.errors import TrainingError
from tentalis.models.kv import cache_keyword, left_padded
from tentalis.models.precision import resolve_dtype
from tentalis.training.batch import MicroBatch, batched, collate
from tentalis.training.config import TrainConfig
from tentalis.training.losses import (
    overlong_mask,
    policy_loss,
    selective_log_softmax,
    soft_overlong_penalty,
    token_entropy,
)
from tentalis.training.metrics import StepMetrics, cached_matmul_peak
from tentalis.training.rollouts import Rollout, RolloutGroup, rollout_advantages
from tentalis.training.sampling import zero_variance_fraction

_LOSS_METRICS = ("ratio_mean", "clip_frac_low", "clip_frac_high", "clip_frac", "kl_mean")


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy and torch (every device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(choice: str) -> torch.device:
    """``auto`` → cuda when torch sees a GPU, else cpu."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise TrainingError(
            "device='cuda' but torch sees no CUDA device; use device='auto' or 'cpu'"
        )
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)


class PolicyTrainer:
    """A base model wrapped with one trainable LoRA adapter, and its AdamW optimiser.

    ``model`` is a model directory (loaded in ``config.dtype`` on ``config.device``) or an
    already-built ``PreTrainedModel`` (then wrapped in place; pass its ``tokenizer`` too if
    you want :attr:`tokenizer` set). Only LoRA parameters train; the base weights never
    change. ``peak_flops`` overrides the measured matmul peak used for MFU.
    """

    #: Skip the forward/backward of rows with no trainable token (exact; see
    #: :meth:`compute_gradients`). False only to check that equivalence in tests.
    skip_untrainable_rows: bool = True

    def __init__(
        self,
        model: str | os.PathLike[str] | Any,
        config: TrainConfig | None = None,
        *,
        tokenizer: Any = None,
        peak_flops: float | None = None,
    ) -> None:
        from peft import LoraConfig, PeftModel, get_peft_model

        self.config = cfg = config or TrainConfig()
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        self.device = resolve_device(cfg.device)
        self.dtype = resolve_dtype(cfg.dtype, self.device, cpu_bf16=False)
        seed_everything(cfg.seed)
        if isinstance(model, str | os.PathLike):
            base, tokenizer = self._load(Path(model), tokenizer)
            self.base_model_name = str(model)
        else:
            if isinstance(model, PeftModel):
                raise TrainingError("pass the base model; PolicyTrainer adds its own LoRA")
            base = model.to(self.device)
            self.dtype = next(base.parameters()).dtype  # a given model is used as it is
            self.base_model_name = str(getattr(base.config, "_name_or_path", "") or "")
        self.tokenizer = tokenizer
        for name in ("final_logit_softcapping", "logit_scale"):
            if getattr(base.config, name, None):
                raise TrainingError(
                    f"{type(base).__name__} uses {name}; PolicyTrainer computes logits as "
                    "lm_head(hidden) and would get them wrong for this model"
                )
        base.config.use_cache = False
        lora = LoraConfig(
            task_type="CAUSAL_LM",
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=cfg.lora_target_modules,
            bias="none",
        )
        with warnings.catch_warnings():  # peft probes a property transformers 5 deprecated
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
            self.model = get_peft_model(base, lora)
        causal_lm = self.model.get_base_model()
        self._decoder = causal_lm.get_decoder()
        self._lm_head = causal_lm.get_output_embeddings()
        self._pad_id = int(getattr(base.config, "pad_token_id", None) or 0)
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        if not named or any("lora_" not in n for n, _ in named):
            raise TrainingError(f"expected only LoRA parameters to train, got {len(named)}")
        self.trainable = [p for _, p in named]
        self.optimizer = torch.optim.AdamW(
            self.trainable,
            lr=cfg.learning_rate,
            betas=(cfg.adam_beta1, cfg.adam_beta2),
            eps=cfg.adam_eps,
            weight_decay=cfg.weight_decay,
        )
        embed = causal_lm.get_input_embeddings().weight
        self.vocab_size = min(embed.shape[0], self._lm_head.weight.shape[0])
        self.n_head_params = self._lm_head.weight.numel()
        self.n_body_params = sum(p.numel() for p in self._decoder.parameters() if p is not embed)
        self.step = 0
        self._peak = peak_flops

    def _load(self, path: Path, tokenizer: Any) -> tuple[Any, Any]:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not (path / "config.json").is_file():
            raise TrainingError(f"{path} is not a model directory (no config.json)")
        attention = self.config.attention
        if attention == "auto":
            attention = "eager" if self.device.type == "cpu" else "sdpa"
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=self.dtype, attn_implementation=attention
        ).to(self.device)
        return model, tokenizer or AutoTokenizer.from_pretrained(path)

    # ------------------------------------------------------------------ training

    def train_step(self, groups: Sequence[RolloutGroup]) -> StepMetrics:
        """One optimiser update from ``groups``; a skipped step changes nothing."""
        t0 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        metrics = self.compute_gradients(groups)
        if not metrics.skipped:
            max_norm = self.config.max_grad_norm or float("inf")
            norm = torch.nn.utils.clip_grad_norm_(self.trainable, max_norm)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            metrics.step = self.step
            metrics.grad_norm = float(norm)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        metrics.step_time_s = time.perf_counter() - t0
        if not metrics.skipped:
            metrics.tokens_per_s = metrics.tokens / metrics.step_time_s
            metrics.mfu = metrics.flops / metrics.step_time_s / self.peak_flops
        return metrics

    def compute_gradients(self, groups: Sequence[RolloutGroup]) -> StepMetrics:
        """Accumulate the loss gradient for ``groups`` into the LoRA ``.grad`` (no step, no
        zeroing) and return the metrics; :meth:`train_step` is this plus clip and step."""
        cfg, lam = self.config, self.config.step_reward_weight
        groups = list(groups)
        metrics = StepMetrics(
            step=self.step, groups=len(groups), learning_rate=self.optimizer.param_groups[0]["lr"]
        )
        groups = self._drop_invalid(groups, metrics)
        received = [r for g in groups for r in g.rollouts]
        if not received:
            return _skip(metrics, "empty batch")
        raw = torch.tensor([r.reward for r in received], dtype=torch.float64)
        metrics.reward_mean = float(raw.mean())
        metrics.reward_std = float(raw.std(correction=0))
        metrics.zero_variance_frac = zero_variance_fraction(raw, [r.group_id for r in received])
        groups = [self.shaped(g) for g in groups]
        informative = [g for g in groups if g.has_signal(lam)]
        if not informative:
            return _skip(metrics, "no group has reward variance (every advantage is 0)")
        if cfg.dynamic_sampling:
            metrics.groups_dropped = len(groups) - len(informative)
            groups = informative
        rollouts = [r for g in groups for r in g.rollouts]
        _, adv = rollout_advantages(rollouts, advantage=cfg.advantage, step_reward_weight=lam)
        lengths = torch.tensor([len(r.completion_ids) for r in rollouts])  # (B,)
        mask = (torch.arange(adv.shape[1])[None] < lengths[:, None]).float()  # (B, T)
        truncated = torch.tensor([r.truncated for r in rollouts])  # (B,)
        if cfg.overlong == "mask":
            mask = overlong_mask(truncated, mask)
        n_items = int(mask.sum())
        metrics.sequences = len(rollouts)
        metrics.truncated_frac = float(truncated.float().mean())
        if n_items == 0:
            return _skip(metrics, "no trainable token (every completion truncated and masked)")

        self.model.train()
        sums = dict.fromkeys(("loss", "entropy", *_LOSS_METRICS), 0.0)
        # A row with no trainable token (truncated and masked) adds 0 to every loss type's
        # sum, and the micro-batch weights count all B rows, so it need not run at all.
        live = [i for i in range(len(rollouts))
                if mask[i].any() or not self.skip_untrainable_rows]
        order = sorted(live, key=lambda i: -rollouts[i].num_tokens)
        executed = 0  # tokens that ran through the decoder (see _executed_tokens)
        for rows in batched(order, cfg.micro_batch_size):
            mb = self._collate(rollouts, rows, adv * mask, mask)
            executed += self._executed_tokens(rollouts, rows, mb)
            logits = self._completion_logits(mb)  # (b, Tc, V)
            logp = selective_log_softmax(logits, mb.completion_ids)  # (b, Tc)
            old = logp.detach()
            if cfg.old_logprobs == "behavior":
                old = torch.where(mb.has_behavior[:, None], mb.behavior, old)
            ref = self._reference_logprobs(mb) if cfg.beta > 0 else None
            loss, parts = policy_loss(
                logp, old, mb.advantages, mb.mask,
                epsilon=cfg.epsilon, epsilon_high=cfg.epsilon_high, loss_type=cfg.loss_type,
                max_completion_length=cfg.max_new_tokens, ref_logp=ref, beta=cfg.beta,
                num_items_in_batch=n_items,
            )  # fmt: skip
            weight = self._micro_weight(len(rows), len(rollouts), float(mb.mask.sum()), n_items)
            (loss * weight).backward()
            tokens = float(mb.mask.sum())
            sums["loss"] += float(loss.detach()) * weight
            for key, value in parts.items():
                sums[key] += float(value) * tokens
            if cfg.compute_entropy:
                with torch.no_grad():
                    sums["entropy"] += float((token_entropy(logits.detach()) * mb.mask).sum())
        metrics.loss = sums["loss"]
        for key in ("ratio_mean", "clip_frac_low", "clip_frac_high", "clip_frac"):
            setattr(metrics, key, sums[key] / n_items)
        metrics.kl = sums["kl_mean"] / n_items if cfg.beta > 0 else None
        metrics.entropy = sums["entropy"] / n_items if cfg.compute_entropy else None
        metrics.completion_tokens = n_items
        metrics.tokens = sum(rollouts[i].num_tokens for i in live)  # what was trained on
        metrics.flops = self.step_flops(executed, int(lengths[live].sum()))
        return metrics

    def _drop_invalid(self, groups: list[RolloutGroup], metrics: StepMetrics) -> list[RolloutGroup]:
        """Remove rollouts with token ids outside the vocabulary (another model's tokens):
        a bad rollout is data, counted in ``metrics.invalid_rollouts``, not a crash."""
        out = []
        for g in groups:
            ok = tuple(r for r in g.rollouts if _ids_in_range(r, self.vocab_size))
            metrics.invalid_rollouts += len(g.rollouts) - len(ok)
            if ok:
                out.append(RolloutGroup(g.group_id, ok))
        return out

    def _micro_weight(self, rows: int, total_rows: int, tokens: float, total_tokens: int) -> float:
        loss_type = self.config.loss_type
        if loss_type in ("dapo", "cispo"):
            return 1.0  # already ÷ num_items_in_batch
        if loss_type == "bnpo":
            return tokens / total_tokens
        return rows / total_rows  # grpo, gspo, dr_grpo: means over rows

    def shaped(self, group: RolloutGroup) -> RolloutGroup:
        """``group`` with the rewards this trainer trains on (the soft overlong penalty added
        when ``overlong='penalty'``; otherwise unchanged)."""
        if self.config.overlong != "penalty":
            return group
        return self._penalise(group)

    def has_signal(self, group: RolloutGroup) -> bool:
        """Whether ``group`` would get a non-zero advantage anywhere in a step (what dynamic
        sampling keeps): judged on the shaped rewards, so a group whose outcomes are equal
        but whose lengths earn different overlong penalties still counts."""
        return self.shaped(group).has_signal(self.config.step_reward_weight)

    def _penalise(self, group: RolloutGroup) -> RolloutGroup:
        cfg = self.config
        assert cfg.max_new_tokens is not None and cfg.cache_len is not None
        lengths = torch.tensor([len(r.completion_ids) for r in group.rollouts])
        penalty = soft_overlong_penalty(lengths, cfg.max_new_tokens, cfg.cache_len).tolist()
        rollouts = tuple(
            replace(r, reward=r.reward + p) for r, p in zip(group.rollouts, penalty, strict=True)
        )
        return RolloutGroup(group.group_id, rollouts)

    # ------------------------------------------------------------------ forward

    def _collate(
        self,
        rollouts: Sequence[Rollout],
        rows: Sequence[int],
        adv: torch.Tensor,
        mask: torch.Tensor,
    ) -> MicroBatch:
        return collate(rollouts, rows, adv, mask, pad_id=self._pad_id, device=self.device)

    def _completion_logits(self, mb: MicroBatch) -> torch.Tensor:
        """Logits predicting each completion token, (b, Tc, V): decoder once, LM head on the
        completion positions only (position p predicts token p + 1).

        With ``share_prefix`` (see :meth:`_staged_hidden`) the prefix every row shares runs
        once and each distinct prompt once; autograd sums the rows' gradients through the
        repeats, so the LoRA weights get the same gradient as from a full forward."""
        with self._autocast():
            skip = self._prefix_len(mb)
            if skip:
                return self._lm_head(self._staged_hidden(mb, skip))
            out = self._decoder(
                input_ids=mb.input_ids, attention_mask=mb.attention_mask, use_cache=False
            )
            hidden = out.last_hidden_state  # (b, L, H)
            tc, seq_len = mb.completion_ids.shape[1], hidden.shape[1]
            steps = torch.arange(tc, device=hidden.device)
            pos = (mb.prompt_len[:, None] - 1 + steps[None]).clamp(max=seq_len - 1)
            picked = hidden.gather(1, pos[..., None].expand(-1, -1, hidden.shape[-1]))
            return self._lm_head(picked)  # (b, Tc, V)

    def _staged_hidden(self, mb: MicroBatch, skip: int) -> torch.Tensor:
        """Hidden states at the positions that predict each completion token, (b, Tc, H),
        computed in three stages over one KV cache::

            prefix   (1, skip)   the tokens every row shares, once; keys/values repeated
            prompts  (U, W)      the rest of each of the U distinct prompts, left-padded to a
                                 common end; its last position predicts completion token 0
            answers  (b, Tc − 1) each row's completion but its last token, after its prompt's
                                 keys/values (selected per row)

        Positions are explicit (padding sits between the stages, masked), so every token
        sees exactly what it sees in a full forward."""
        device, kw = mb.input_ids.device, cache_keyword(self._decoder)
        uniq, index = mb.distinct_prompts, mb.prompt_index
        lens = mb.prompt_len.tolist()
        rests = [mb.input_ids[u, skip:lens[u]].tolist() for u in uniq]
        ids, attn, pos = left_padded(rests, self._pad_id, skip, device)
        cache = self._prefix_cache(mb.input_ids[:1, :skip], len(uniq))
        attn = torch.cat([attn.new_ones((len(uniq), skip)), attn], dim=1)
        out = self._decoder(input_ids=ids, attention_mask=attn, position_ids=pos,
                            use_cache=True, **{kw: cache})
        rows = torch.tensor(index, device=device)
        first = out.last_hidden_state[:, -1][rows][:, None]  # (b, 1, H)
        tc = mb.completion_ids.shape[1]
        if tc == 1:
            return first
        if len(uniq) < len(index):
            cache.batch_select_indices(rows)
        done = mb.attention_mask.sum(-1) - mb.prompt_len  # completion lengths
        steps = torch.arange(tc - 1, device=device)
        answer_attn = (steps[None] < done[:, None]).long()
        out = self._decoder(
            input_ids=mb.completion_ids[:, :-1],
            attention_mask=torch.cat([attn[rows], answer_attn], dim=1),
            position_ids=mb.prompt_len[:, None] + steps[None],
            use_cache=True, **{kw: cache},
        )
        return torch.cat([first, out.last_hidden_state], dim=1)

    def _executed_tokens(self, rollouts: Sequence[Rollout], rows: Sequence[int],
                         mb: MicroBatch) -> int:
        """Tokens of ``mb`` that run through the decoder (padding not counted): every
        token of every row, or with ``share_prefix`` the shared prefix once, each distinct
        prompt's rest once and each completion but its last token (:meth:`_staged_hidden`)."""
        skip = self._prefix_len(mb)
        if not skip:
            return sum(rollouts[i].num_tokens for i in rows)
        prompts = sum(len(rollouts[rows[u]].prompt_ids) - skip for u in mb.distinct_prompts)
        answers = sum(max(len(rollouts[i].completion_ids) - 1, 0) for i in rows)
        return skip + prompts + answers

    def _prefix_len(self, mb: MicroBatch) -> int:
        """Tokens of ``mb`` to run once for all rows (0: run every row in full)."""
        return mb.shared_prefix if self.config.share_prefix else 0

    def _prefix_cache(self, prefix_ids: torch.Tensor, rows: int) -> Any:
        """Keys/values of ``prefix_ids`` (1, P), repeated for ``rows`` rows."""
        from transformers import DynamicCache

        cache = DynamicCache(config=self._decoder.config)
        self._decoder(input_ids=prefix_ids, use_cache=True,
                      **{cache_keyword(self._decoder): cache})
        cache.batch_repeat_interleave(rows)
        return cache

    def _autocast(self) -> Any:
        """bf16/fp16 base weights: run the float32 LoRA matmuls in that precision too (the
        LoRA weights and their gradients stay float32). float32: a no-op."""
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def _reference_logprobs(self, mb: MicroBatch) -> torch.Tensor:
        """Base-model log-probs (adapter disabled, no grad), (b, Tc)."""
        with torch.no_grad(), self.model.disable_adapter():
            return selective_log_softmax(self._completion_logits(mb), mb.completion_ids)

    @torch.no_grad()
    def completion_logprobs(self, rollouts: Sequence[Rollout]) -> list[torch.Tensor]:
        """Per-token log-probs of each rollout's completion under the current policy (CPU)."""
        was_training = self.model.training
        self.model.eval()
        out: list[torch.Tensor] = [torch.empty(0)] * len(rollouts)
        t = max((len(r.completion_ids) for r in rollouts), default=0)
        zeros = torch.zeros(len(rollouts), t)
        try:
            for rows in batched(range(len(rollouts)), self.config.micro_batch_size):
                mb = self._collate(rollouts, rows, zeros, zeros)
                logp = selective_log_softmax(self._completion_logits(mb), mb.completion_ids)
                for j, i in enumerate(rows):
                    out[i] = logp[j, : len(rollouts[i].completion_ids)].float().cpu()
        finally:
            self.model.train(was_training)
        return out

    # ------------------------------------------------------------------ accounting

    def step_flops(self, tokens: int, completion_tokens: int) -> float:
        """Estimated FLOPs of one step (see the module docstring)."""
        forward = 2.0 * (self.n_body_params * tokens + self.n_head_params * completion_tokens)
        passes = 2.0 + (1.0 if self.config.beta > 0 else 0.0)
        return passes * forward

    @property
    def peak_flops(self) -> float:
        """Matmul peak FLOP/s of this device (measured once per process unless given)."""
        if self._peak is None:
            self._peak = cached_matmul_peak(self.device.type, str(self.dtype).split(".")[-1])
        return self._peak

    # ------------------------------------------------------------------ adapter state

    def save_adapter(self, directory: str | os.PathLike[str]) -> Path:
        """Write only the LoRA adapter (``adapter_config.json`` + ``adapter_model.safetensors``)
        to ``directory``: what an inference worker loads with ``load_adapter(name, path)``."""
        directory = Path(directory)
        self.model.save_pretrained(str(directory), safe_serialization=True)
        return directory

    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        """LoRA weights (peft names, no adapter suffix), cloned to CPU."""
        from peft import get_peft_model_state_dict

        state = get_peft_model_state_dict(self.model)
        return {k: v.detach().cpu().clone() for k, v in state.items()}

    def load_adapter_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load LoRA weights saved by :meth:`adapter_state_dict` / :meth:`save_adapter`."""
        from peft import set_peft_model_state_dict

        expected = set(self.adapter_state_dict())
        if set(state) != expected:
            missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
            raise TrainingError(
                f"adapter weights do not match this trainer's LoRA (missing {missing[:3]}, "
                f"unexpected {extra[:3]}); was it trained with another lora_r / target modules?"
            )
        set_peft_model_state_dict(self.model, state)


def _ids_in_range(rollout: Rollout, vocab_size: int) -> bool:
    ids = rollout.prompt_ids + rollout.completion_ids
    return min(ids) >= 0 and max(ids) < vocab_size


def _skip(metrics: StepMetrics, reason: str) -> StepMetrics:
    metrics.skipped, metrics.skip_reason = True, reason
    return metrics
